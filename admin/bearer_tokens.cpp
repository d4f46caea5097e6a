#include "admin/bearer_tokens.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <algorithm>
#include <stdexcept>

#include "admin/status_mapping.hpp"
#include "gateway/config/configured_file.hpp"

namespace wsgateway::admin {
namespace {

constexpr const char* kNoSha256 = "OpenSSL cannot compute SHA-256, which keeps the admin bearer tokens";
constexpr std::string_view kSpace = " \t\r\n\f\v";

std::string_view Trim(std::string_view text) {
  const auto first = text.find_first_not_of(kSpace);
  if (first == std::string_view::npos) return {};
  return text.substr(first, text.find_last_not_of(kSpace) - first + 1);
}

}  // namespace

std::vector<std::string> TokenLines(std::string_view text) {
  std::vector<std::string> tokens;
  while (!text.empty()) {
    const auto end = text.find('\n');
    const auto line = Trim(text.substr(0, end));
    if (!line.empty() && line.front() != '#') tokens.emplace_back(line);
    text = end == std::string_view::npos ? std::string_view{} : text.substr(end + 1);
  }
  return tokens;
}

namespace {

// The token of an authorization value "Bearer <token>" (the scheme in any
// case, RFC 7235), or empty when it is not one.
std::string_view BearerToken(std::string_view authorization) {
  constexpr std::string_view kScheme = "bearer";
  if (authorization.size() <= kScheme.size() || kSpace.find(authorization[kScheme.size()]) == std::string_view::npos) {
    return {};
  }
  for (std::size_t i = 0; i < kScheme.size(); ++i) {
    const char c = authorization[i];
    if ((c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c) != kScheme[i]) return {};
  }
  return Trim(authorization.substr(kScheme.size()));
}

}  // namespace

BearerTokens::BearerTokens(std::string file, const std::vector<std::string>& listed, std::string_view file_key)
    : file_(std::move(file)), file_key_(file_key) {
  std::vector<std::string> trimmed;
  for (const auto& token : listed) {
    if (const auto t = Trim(token); !t.empty()) trimmed.emplace_back(t);
  }
  std::vector<std::string> from_file;
  if (!file_.empty()) {
    std::string error;
    auto read = ReadFile(&error);
    if (!read) throw std::runtime_error(error);
    from_file = std::move(*read);
  }
  auto listed_digests = DigestsOf(trimmed);
  auto file_digests = DigestsOf(from_file);
  if (!listed_digests || !file_digests) throw std::runtime_error(kNoSha256);
  listed_ = std::move(*listed_digests);
  Replace(std::move(*file_digests));
  required_ = count() > 0;
}

std::size_t BearerTokens::count() const {
  const std::lock_guard lock(mutex_);
  return digests_->size();
}

grpc::Status BearerTokens::Check(const grpc::ServerContextBase& context) const {
  if (!required_) return grpc::Status::OK;
  const auto& metadata = context.client_metadata();
  const auto found = metadata.find("authorization");
  if (found == metadata.end()) return CheckAuthorization(std::nullopt);
  return CheckAuthorization(std::string_view(found->second.data(), found->second.size()));
}

grpc::Status BearerTokens::CheckAuthorization(std::optional<std::string_view> authorization) const {
  if (!required_) return grpc::Status::OK;
  const auto token = authorization ? BearerToken(*authorization) : std::string_view{};
  if (token.empty()) return MissingBearerToken();
  std::shared_ptr<const Digests> digests;
  {
    const std::lock_guard lock(mutex_);
    digests = digests_;
  }
  const auto presented = DigestOf(token);
  if (!presented) return BearerTokenNotAccepted();
  // Every digest is compared, so the time taken does not depend on which
  // one matched, or on how much of one did.
  bool accepted = false;
  for (const auto& digest : *digests) {
    accepted |= CRYPTO_memcmp(digest.data(), presented->data(), presented->size()) == 0;
  }
  return accepted ? grpc::Status::OK : BearerTokenNotAccepted();
}

std::string BearerTokens::Reload() {
  if (file_.empty()) return "no --" + file_key_ + " is set: nothing to re-read";
  std::string error;
  const auto read = ReadFile(&error);
  if (!read) return error + "; the tokens in force stay";
  auto digests = DigestsOf(*read);
  if (!digests) return std::string(kNoSha256) + "; the tokens in force stay";
  Replace(std::move(*digests));
  return {};
}

std::optional<std::vector<std::string>> BearerTokens::ReadFile(std::string* error) const {
  const auto text = ReadConfiguredFile(file_key_, file_, error);
  if (!text) return std::nullopt;
  auto tokens = TokenLines(*text);
  if (tokens.empty()) {
    *error = ConfiguredFileError(file_key_, file_,
                                 "holds no token: put one token per line (blank lines and lines starting with '#' "
                                 "are skipped)");
    return std::nullopt;
  }
  return tokens;
}

void BearerTokens::Replace(Digests from_file) {
  auto digests = std::make_shared<Digests>(listed_);
  digests->insert(digests->end(), from_file.begin(), from_file.end());
  std::sort(digests->begin(), digests->end());
  digests->erase(std::unique(digests->begin(), digests->end()), digests->end());
  const std::lock_guard lock(mutex_);
  digests_ = std::move(digests);
}

std::optional<BearerTokens::Digest> BearerTokens::DigestOf(std::string_view token) {
  Digest digest{};
  unsigned int size = 0;
  if (EVP_Digest(token.data(), token.size(), digest.data(), &size, EVP_sha256(), nullptr) != 1 ||
      size != digest.size()) {
    return std::nullopt;
  }
  return digest;
}

std::optional<BearerTokens::Digests> BearerTokens::DigestsOf(const std::vector<std::string>& tokens) {
  Digests digests;
  for (const auto& token : tokens) {
    const auto digest = DigestOf(token);
    if (!digest) return std::nullopt;
    digests.push_back(*digest);
  }
  return digests;
}

}  // namespace wsgateway::admin
