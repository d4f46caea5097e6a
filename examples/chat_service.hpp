// wsgateway.v1.Backend as the chat serves it: the event stream goes to the
// room (backend_stream.hpp does the streaming), Handshake and HandleRequest
// are answered at once from the calling gRPC thread, since deciding them
// needs no I/O.
#pragma once

#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include "backend_stream.hpp"
#include "chat_handshake.hpp"
#include "chat_room.hpp"
#include "chat_site.hpp"

namespace wsgateway_examples {

class ChatService final : public wsgateway::v1::Backend::CallbackService {
 public:
  explicit ChatService(ChatRoom& room) : handler_{&room} {}

 private:
  grpc::ServerBidiReactor<EventBatch, CommandBatch>* Connect(grpc::CallbackServerContext* context) override {
    return new EventStream<ChatRoomHandler>(context, handler_);
  }

  grpc::ServerUnaryReactor* Handshake(grpc::CallbackServerContext* context,
                                      const wsgateway::v1::HandshakeRequest* request,
                                      wsgateway::v1::HandshakeResponse* response) override {
    *response = DecideHandshake(*request);
    if (response->has_reject()) {
      spdlog::debug("upgrade {}?{} from {} refused with {}", request->path(), request->query(),
                    request->remote_address(), response->reject().status());
    }
    return Finish(context);
  }

  grpc::ServerUnaryReactor* HandleRequest(grpc::CallbackServerContext* context,
                                          const wsgateway::v1::HttpRequest* request,
                                          wsgateway::v1::HttpResponse* response) override {
    *response = AnswerRequest(*request);
    return Finish(context);
  }

  static grpc::ServerUnaryReactor* Finish(grpc::CallbackServerContext* context) {
    auto* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  ChatRoomHandler handler_;
};

}  // namespace wsgateway_examples
