#!/usr/bin/env python3
"""Writes the seed corpus of every fuzz target (corpus/<target>/). The seeds
are committed; run this again only to change them. Each target's comment
in its .cpp file describes its input layout."""

import os
import shutil
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")


def write(target, seeds):
    folder = os.path.join(CORPUS, target)
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    for name, data in seeds.items():
        if isinstance(data, str):
            data = data.encode()
        with open(os.path.join(folder, name), "wb") as f:
            f.write(data)


# ------------------------------------------------------------ frames
def frame(opcode, payload, fin=True, rsv1=False, mask=b"\x37\xfa\x21\x3d", length_form=None):
    if isinstance(payload, str):
        payload = payload.encode()
    first = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
    mask_bit = 0x80 if mask is not None else 0
    n = len(payload)
    if length_form == 16 or (length_form is None and 126 <= n < 65536):
        header = bytes([first, mask_bit | 126]) + struct.pack(">H", n)
    elif length_form == 64 or (length_form is None and n >= 65536):
        header = bytes([first, mask_bit | 127]) + struct.pack(">Q", n)
    else:
        header = bytes([first, mask_bit | n])
    if mask is None:
        return header + payload
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return header + mask + masked


def deflate(data, wbits=15, level=6):
    if isinstance(data, str):
        data = data.encode()
    c = zlib.compressobj(level, zlib.DEFLATED, -wbits)
    out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


def reader_options(no_context_takeover=True, window_bits=15, chunk=0, max_message_bytes=65536):
    flags = (1 if no_context_takeover else 0) | ((window_bits - 8) << 1)
    limit = max_message_bytes // 32 - 1
    return bytes([flags, chunk]) + struct.pack("<H", limit)


def message_reader():
    o = reader_options()
    return {
        "text": o + frame(1, "hello"),
        "binary": o + frame(2, bytes(range(40))),
        "fragmented_text": o + frame(1, "frag", fin=False) + frame(0, "men", fin=False) + frame(0, "ted"),
        "ping_inside_fragments": o + frame(2, b"ab", fin=False) + frame(9, "p") + frame(0, b"cd"),
        "ping_pong": o + frame(9, "are you there") + frame(10, "yes"),
        "close_with_reason": o + frame(8, struct.pack(">H", 1000) + b"bye"),
        "close_empty": o + frame(8, b""),
        "close_bad_code": o + frame(8, struct.pack(">H", 1005)),
        "utf8_split_over_fragments": o + frame(1, "caf\xc3".encode("latin-1"), fin=False) + frame(0, b"\xa9!"),
        "utf8_invalid": o + frame(1, b"\xc0\xaf"),
        "unmasked": o + frame(1, "hi", mask=None),
        "length16": reader_options(chunk=7) + frame(2, b"x" * 300),
        "length64_nonminimal": o + frame(2, b"y" * 10, length_form=64),
        "too_big": reader_options(max_message_bytes=32) + frame(2, b"z" * 100),
        "rsv1_without_extension": o + frame(1, deflate("hello"), rsv1=True),
        "reserved_opcode": o + frame(3, "x"),
        "byte_by_byte": reader_options(chunk=1) + frame(1, "slowly") + frame(9, "") + frame(8, b"\x03\xe8"),
        "many_messages": o + b"".join(frame(1, "m%d" % i) for i in range(20)),
    }


def message_reader_deflate():
    o = reader_options()
    kept = reader_options(no_context_takeover=False)
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    first = c.compress(b"hello hello hello") + c.flush(zlib.Z_SYNC_FLUSH)
    second = c.compress(b"hello again hello") + c.flush(zlib.Z_SYNC_FLUSH)
    big = deflate(b"\x00" * 200000)
    whole = deflate("a compressed message, split over frames " * 4)
    return {
        "hello_rfc7692": o + frame(1, b"\xf2\x48\xcd\xc9\xc9\x07\x00", rsv1=True),
        "compressed_text": o + frame(1, deflate("hello, compressed world"), rsv1=True),
        "compressed_binary": o + frame(2, deflate(bytes(range(256)) * 4), rsv1=True),
        "fragmented_compressed": o
        + frame(1, whole[:10], rsv1=True, fin=False)
        + frame(0, whole[10:30], fin=False)
        + frame(0, whole[30:]),
        "context_takeover": kept + frame(1, first[:-4], rsv1=True) + frame(1, second[:-4], rsv1=True),
        "window_9": reader_options(window_bits=9) + frame(1, deflate("nine bits " * 30, wbits=9), rsv1=True),
        "bomb": reader_options(max_message_bytes=4096) + frame(2, big, rsv1=True),
        "corrupt": o + frame(1, b"\xff\xff\xff\xff\x00", rsv1=True),
        "truncated": o + frame(1, deflate("truncated message " * 10)[:-3], rsv1=True),
        "stored_block": o + frame(2, deflate(bytes((i * 37) % 256 for i in range(64)), level=0), rsv1=True),
        "mixed": o + frame(1, "plain") + frame(1, deflate("packed"), rsv1=True) + frame(9, "ping"),
        "compressed_invalid_utf8": o + frame(1, deflate(b"\xed\xa0\x80"), rsv1=True),
        "rsv1_on_control": o + frame(9, deflate("x"), rsv1=True),
        "chunked": reader_options(chunk=3) + frame(1, deflate("arrives in small reads " * 3), rsv1=True),
        "final_block": o + frame(1, zlib.compressobj(6, zlib.DEFLATED, -15).compress(b"end") + b"\x03\x00", rsv1=True),
    }


# ------------------------------------------------------------ HTTP
KEY = "dGhlIHNhbXBsZSBub25jZQ=="


def request(target="/", headers=(), method="GET", version="1.1", chunk=0, body=""):
    lines = ["%s %s HTTP/%s" % (method, target, version)] + list(headers)
    return bytes([chunk]) + ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


UPGRADE = ["Host: gateway.example", "Upgrade: websocket", "Connection: Upgrade",
           "Sec-WebSocket-Key: " + KEY, "Sec-WebSocket-Version: 13"]


def upgrade_request():
    return {
        "upgrade": request("/", UPGRADE),
        "upgrade_query": request("/chat/room?name=ann&x=1", UPGRADE),
        "subprotocols": request("/chat", UPGRADE + ["Sec-WebSocket-Protocol: chat.v2, chat.v1"]),
        "subprotocols_repeated": request("/", UPGRADE + ["Sec-WebSocket-Protocol: x", "Sec-WebSocket-Protocol: chat.v1"]),
        "deflate": request("/", UPGRADE + ["Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits"]),
        "deflate_plain_route": request("/plain", UPGRADE + ["Sec-WebSocket-Extensions: permessage-deflate"]),
        "origin_allowed": request("/", UPGRADE + ["Origin: https://app.example.com"]),
        "origin_wildcard": request("/", UPGRADE + ["Origin: https://a.b.example.org:443"]),
        "origin_refused": request("/", UPGRADE + ["Origin: https://evil.example"]),
        "origin_twice": request("/", UPGRADE + ["Origin: null", "Origin: null"]),
        "bad_version": request("/", UPGRADE[:-1] + ["Sec-WebSocket-Version: 8"]),
        "bad_key": request("/", UPGRADE[:3] + ["Sec-WebSocket-Key: short", "Sec-WebSocket-Version: 13"]),
        "post": request("/", UPGRADE, method="POST"),
        "http10": request("/", UPGRADE, version="1.0"),
        "connection_list": request("/", ["Host: h", "Upgrade: WebSocket", "Connection: keep-alive, Upgrade",
                                         "Sec-WebSocket-Key: " + KEY, "Sec-WebSocket-Version: 13"]),
        "plain_get": request("/index.html", ["Host: h", "Accept: */*"]),
        "plain_post_body": request("/api", ["Host: h", "Content-Length: 5"], method="POST", body="hello"),
        "chunked_reads": request("/", UPGRADE + ["Sec-WebSocket-Extensions: permessage-deflate"], chunk=5),
        "many_headers": request("/", UPGRADE + ["X-H%d: %s" % (i, "v" * i) for i in range(40)]),
        "everything": request("/chat", UPGRADE + [
            "Origin: https://app.example.com", "Sec-WebSocket-Protocol: chat.v1",
            "Sec-WebSocket-Extensions: x-foo, permessage-deflate; server_max_window_bits=10; client_max_window_bits=9",
            "User-Agent: fuzz"]),
    }


def deflate_offer():
    policy = bytes([0x03 | (7 << 2) | (7 << 5)])
    small = bytes([0x00 | (2 << 2) | (1 << 5)])
    offers = {
        "plain": "permessage-deflate",
        "client_bits": "permessage-deflate; client_max_window_bits",
        "all": "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
               "server_max_window_bits=10; client_max_window_bits=12",
        "quoted": 'permessage-deflate; client_max_window_bits="10"',
        "server_8": "permessage-deflate; server_max_window_bits=8, permessage-deflate",
        "unknown_then_ok": "x-webkit-deflate-frame, permessage-deflate; foo=bar, permessage-deflate",
        "case_and_ows": "PerMessage-Deflate ;\tClient_Max_Window_Bits = 11 ,",
        "duplicate": "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        "bad_values": "permessage-deflate; client_max_window_bits=016, permessage-deflate; server_max_window_bits",
        "quoted_comma": 'permessage-deflate; x="a,b", permessage-deflate',
        "escaped_quote": 'permessage-deflate; client_max_window_bits="1\\0"',
        "empty_elements": ", , permessage-deflate,,",
    }
    seeds = {name: policy + text.encode() for name, text in offers.items()}
    seeds["small_policy"] = small + b"permessage-deflate; server_max_window_bits=15; client_max_window_bits"
    return seeds


def inflater():
    def opts(window_bits=15, reset=True, frame_size=0, limit=65536):
        return bytes([(window_bits - 8) | (8 if reset else 0), frame_size]) + struct.pack("<H", limit - 1)
    return {
        "hello": opts() + b"\xf2\x48\xcd\xc9\xc9\x07\x00",
        "text": opts() + deflate("the quick brown fox jumps over the lazy dog " * 5),
        "frames": opts(frame_size=3) + deflate("split into three-byte frames " * 4),
        "window_9": opts(window_bits=9) + deflate("window " * 100, wbits=9),
        "window_8": opts(window_bits=8) + deflate("eight " * 100, wbits=9),
        "bomb": opts(limit=1000) + deflate(b"\x00" * 100000),
        "corrupt": opts() + b"\x07\xff\x00\x12",
        "final_block": opts() + zlib.compress(b"zlib framed")[2:-4],
        "stored": opts() + deflate(bytes(range(256)), level=0),
        "keep_context": opts(reset=False) + deflate("kept"),
        "plain_input": opts(limit=16) + b"not compressed at all, longer than the limit",
        "empty": opts(),
    }


def config_yaml():
    with open(os.path.join(HERE, "..", "..", "examples", "chat_gateway.yaml")) as f:
        chat = f.read()
    return {
        "chat_example": chat,
        "minimal": "listen: 0.0.0.0:8080\nbackend: dns:///chat-backend.default.svc:50052\n"
                   "max_message_bytes: 256KiB\nping_interval: 20s\nlog_format: json\n",
        "routes": "backend: 127.0.0.1:50052\nroutes:\n  - path_prefix: /chat\n    backend: 127.0.0.1:50053\n"
                  "    handshake_hook: true\n    http_forwarding: true\n    permessage_deflate: true\n"
                  "    subprotocols: [chat.v1]\n  - path_prefix: /feed\n    max_message_bytes: 64KiB\n"
                  "    forward_close_frames: true\n",
        "lists": "allowed_origins:\n  - https://app.example.com\n  - https://*.example.org\n  - 'null'\n"
                 "subprotocols: [a, b]\nresponse_headers: ['X-Frame-Options: DENY']\n",
        "durations": "handshake_timeout: 2500ms\nclose_timeout: 1s\npong_timeout: 1m\nretry_after: 3s\n"
                     "backend_batch_interval: 0ms\ndrain_timeout: 30s\ndrain_rate: 100\n",
        "sizes": "max_handshake_bytes: 1KiB\nsend_queue_max_bytes: 8MiB\nbackend_buffer_bytes: 64KiB\n"
                 "max_request_body_bytes: 0\ncompression_threshold: 1024\ncompression_level: 9\n",
        "bools": "permessage_deflate: yes\nreject_upgrades_without_backend: false\nhttp_forwarding: on\n",
        "threads": "threads: 4\nmax_connections: 1000\nmax_connections_per_address: 10\nlog_level: debug\n",
        "tls_names": "tls_cert_file: /etc/tls/cert.pem\ntls_key_file: /etc/tls/key.pem\n",
        "dash_keys": "max-message-bytes: 1MiB\nping-interval: 0ms\n",
        "unknown_key": "no_such_key: 1\n",
        "not_a_map": "- a\n- b\n",
        "anchors": "base: &b 1KiB\nmax_message_bytes: *b\n",
        "flow": "{listen: '127.0.0.1:0', routes: [{path_prefix: /x, subprotocols: [p]}]}\n",
        "quoted": 'backend: "dns:///a:1"\nlog_format: "text"\nresponse_headers: ["A: b", "C: \\"d\\""]\n',
        "empty": "",
    }


# ------------------------------------------------------------ protobuf
def varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def field_varint(number, value):
    return varint(number << 3) + varint(value)


def field_bytes(number, data):
    if isinstance(data, str):
        data = data.encode()
    return varint((number << 3) | 2) + varint(len(data)) + data


def pb_frame(opcode=None, payload=None, fin=None, compress=None, continuation=None, close=None):
    out = b""
    if opcode is not None:
        out += field_varint(1, opcode)
    if payload is not None:
        out += field_bytes(2, payload)
    if fin is not None:
        out += field_varint(3, 1 if fin else 0)
    if compress is not None:
        out += field_varint(4, 1 if compress else 0)
    if continuation is not None:
        out += field_varint(5, 1 if continuation else 0)
    if close is not None:
        code, reason = close
        out += field_bytes(6, field_varint(1, code) + field_bytes(2, reason))
    return out


ID = "0123456789abcdef-1-2a"


def push(frame_bytes, ids=(ID,)):
    body = b"".join(field_bytes(1, i) for i in ids) + field_bytes(2, frame_bytes)
    return field_bytes(2, field_bytes(1, body))


def disconnect(connection_id=ID, code=None, reason=None):
    body = field_bytes(1, connection_id)
    if code is not None:
        body += field_varint(2, code)
    if reason is not None:
        body += field_bytes(3, reason)
    return field_bytes(2, field_bytes(2, body))


def command_batch():
    return {
        "ack_only": field_varint(1, 42),
        "push_text": field_varint(1, 1) + push(pb_frame(1, "hello")),
        "push_default_opcode": push(pb_frame(payload="unset opcode is text")),
        "push_binary_many_ids": push(pb_frame(2, bytes(range(64))),
                                     ids=(ID, "0123456789abcdef-0-1", "x", "0000000000000001-2-ff")),
        "push_compressible": push(pb_frame(1, "compress me " * 50, compress=True)),
        "push_no_compress": push(pb_frame(2, b"\x00" * 300, compress=False)),
        "push_fragments": push(pb_frame(1, "frag", fin=False)) + push(pb_frame(1, "ment", continuation=True)),
        "push_ping_pong": push(pb_frame(9, "p")) + push(pb_frame(10, "q")),
        "push_big_ping": push(pb_frame(9, "p" * 126)),
        "push_close": push(pb_frame(8, close=(4000, "room closed"))),
        "push_close_bad": push(pb_frame(8, payload="x", close=(1006, "no"))),
        "push_bad_utf8": push(pb_frame(1, b"\xff\xfe")),
        "push_bad_opcode": push(pb_frame(3, "x")),
        "disconnect": disconnect(code=4001, reason="kicked"),
        "disconnect_default": disconnect(),
        "disconnect_bad_code": disconnect(code=1005, reason="r"),
        "disconnect_long_reason": disconnect(code=1000, reason="r" * 124),
        "mixed": field_varint(1, 7) + push(pb_frame(1, "a")) + disconnect(code=3000) + push(pb_frame(2, "b")),
    }


def connection_id():
    return {
        "canonical": "0123456789abcdef-1-2a",
        "loop0": "00000000000000ff-0-1",
        "max": "ffffffffffffffff-ffffffff-ffffffffffffffff",
        "leading_zero": "0123456789abcdef-01-2a",
        "upper": "0123456789ABCDEF-1-2a",
        "short_epoch": "123-1-2",
        "no_counter": "0123456789abcdef-1-",
        "extra_dash": "0123456789abcdef-1-2-3",
        "loop_overflow": "0123456789abcdef-100000000-1",
        "empty": "",
        "binary": bytes(range(32)),
    }


def origin_policy():
    return {
        "exact": "https://app.example.com\nhttps://app.example.com",
        "default_port": "https://app.example.com:443\nhttps://app.example.com",
        "wildcard": "https://*.example.com\nhttps://a.b.example.com",
        "wildcard_self": "https://*.example.com\nhttps://example.com",
        "ipv6": "http://[::1]:8080\nhttp://[::1]:8080",
        "null": "null\nnull",
        "star": "*\nhttps://anything.example",
        "no_header": "https://a.example\n-",
        "case": "HTTPS://App.Example.COM\nhttps://app.example.com",
        "bad_entries": "https://a.example/\nftp://x\nhttps://u@h\nhttp://[::1\nhttps://h:99999\nhttps://h",
        "many": "ws://a\nwss://b:1\nhttp://c.d\nhttps://*.e.f\nnull\nhttp://c.d:80",
        "port_forms": "https://h:0443\nhttps://h:+443\nhttps://h:443",
    }


# ------------------------------------------------------------ dictionaries
def write_dict(target, words):
    folder = os.path.join(HERE, "dict")
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, target + ".dict"), "w") as f:
        f.write("# libFuzzer dictionary for %s_fuzz, written by make_seeds.py\n" % target)
        for word in words:
            escaped = "".join(c if 0x20 <= ord(c) < 0x7F and c not in '"\\' else "\\x%02x" % ord(c) for c in word)
            f.write('"%s"\n' % escaped)


def config_keys():
    """The keys of docs/configuration.md's table (the table is held to the code by a unit test)."""
    keys = []
    with open(os.path.join(HERE, "..", "..", "docs", "configuration.md")) as f:
        for line in f:
            if line.startswith("| `"):
                keys.append(line.split("`")[1])
    return keys


def dictionaries():
    write_dict("upgrade_request", [
        "GET ", " HTTP/1.1\r\n", "\r\n", ": ", "Host", "Upgrade", "websocket", "Connection", "upgrade",
        "keep-alive", "Sec-WebSocket-Key", KEY, "Sec-WebSocket-Version", "13", "Sec-WebSocket-Protocol",
        "chat.v1", "chat.v2", "Sec-WebSocket-Extensions", "permessage-deflate", "client_max_window_bits",
        "server_no_context_takeover", "Origin", "https://app.example.com", "https://x.example.org", "null",
        "Content-Length", "Transfer-Encoding", "chunked", "Expect", "100-continue", "/plain", "/chat", "?",
    ])
    write_dict("deflate_offer", [
        "permessage-deflate", "server_no_context_takeover", "client_no_context_takeover",
        "server_max_window_bits", "client_max_window_bits", "=", ";", ",", '"', "\\", "8", "9", "15", "16",
    ])
    write_dict("config_yaml", config_keys() + [
        ": ", "\n", "\n  - ", "path_prefix", "[", "]", "{", "}", "true", "false", "KiB", "MiB", "GiB", "ms",
        "s", "m", "h", "null", "~", "&a ", "*a", "!!str ", "'", '"', "|", ">",
    ])
    write_dict("origin_policy", [
        "http://", "https://", "ws://", "wss://", "*.", "null", "*", ":443", ":80", "[::1]", "\n",
    ])


def main():
    dictionaries()
    write("message_reader", message_reader())
    write("message_reader_deflate", message_reader_deflate())
    write("upgrade_request", upgrade_request())
    write("deflate_offer", deflate_offer())
    write("inflater", inflater())
    write("config_yaml", config_yaml())
    write("command_batch", command_batch())
    write("connection_id", connection_id())
    write("origin_policy", origin_policy())


if __name__ == "__main__":
    main()
