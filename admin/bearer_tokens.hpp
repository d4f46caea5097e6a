#pragma once
// The admin API's bearer tokens: the lines of --admin-token-file plus the
// --admin-tokens list. With any token configured, a call must carry the
// metadata "authorization: Bearer <token>" naming one of them. Tokens are
// kept as SHA-256 digests, and a presented token's digest is compared with
// every one of them in constant time, so response times say nothing about
// how close a guess was.
//
// Thread-safety: Check from any thread, concurrently with Reload.

#include <absl/base/thread_annotations.h>
#include <grpcpp/grpcpp.h>

#include <array>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace wsgateway::admin {

// The tokens of a token file's text: one per line, trimmed; blank lines and
// lines starting with '#' are not tokens.
std::vector<std::string> TokenLines(std::string_view text);

class BearerTokens {
 public:
  // Reads `file` unless it is empty. Throws std::runtime_error naming
  // `file_key` (--admin-token-file, or --cluster-token-file for the
  // node-to-node service) and the file when the file cannot be read or holds
  // no token: a token file that protects nothing must not start an open API.
  BearerTokens(std::string file, const std::vector<std::string>& listed,
               std::string_view file_key = "admin-token-file");

  // Whether calls need a token at all; fixed at start-up, since a reload
  // never leaves the set empty.
  bool required() const { return required_; }
  std::size_t count() const;
  const std::string& file() const { return file_; }

  // OK when the call's authorization metadata names a configured token (or
  // no token is configured); UNAUTHENTICATED otherwise.
  grpc::Status Check(const grpc::ServerContextBase& context) const;
  // The same for the value of the authorization metadata, if any.
  grpc::Status CheckAuthorization(std::optional<std::string_view> authorization) const;

  // Re-reads the token file. Empty on success; otherwise why it failed,
  // and the tokens in force stay.
  std::string Reload();

 private:
  using Digest = std::array<unsigned char, 32>;
  using Digests = std::vector<Digest>;

  // SHA-256 of `token`; nullopt only if OpenSSL cannot compute it.
  static std::optional<Digest> DigestOf(std::string_view token);
  // The digest of every token; nullopt if one cannot be computed.
  static std::optional<Digests> DigestsOf(const std::vector<std::string>& tokens);

  // The file's tokens, or nullopt with the reason in *error.
  std::optional<std::vector<std::string>> ReadFile(std::string* error) const;
  void Replace(Digests from_file);

  const std::string file_;
  const std::string file_key_;
  Digests listed_;
  bool required_ = false;
  mutable std::mutex mutex_;
  std::shared_ptr<const Digests> digests_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace wsgateway::admin
