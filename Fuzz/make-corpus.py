#!/usr/bin/env python3
"""Regenerates the seed corpus in Fuzz/corpus/<target>/ (run from anywhere).

Seeds: hand-written valid inputs for each target, plus every string literal of the
target's existing tests (Swift escapes decoded; an interpolation `\\(…)` becomes `x`).
Files are named by the SHA-1 of their content, so re-running is idempotent.
"""
import hashlib, json, os, re, shutil, struct

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Fuzz", "corpus")

LITERAL = re.compile(r'(#?)"((?:\\.|[^"\\\n])*)"\1')


def unescape(body, raw):
    if raw:
        return body.encode()
    out, i = [], 0
    while i < len(body):
        c = body[i]
        if c != "\\":
            out.append(c); i += 1; continue
        n = body[i + 1]
        if n == "(":  # interpolation: skip to the matching ')'
            depth, j = 1, i + 2
            while j < len(body) and depth:
                depth += {"(": 1, ")": -1}.get(body[j], 0); j += 1
            out.append("x"); i = j; continue
        if n == "u":
            end = body.index("}", i)
            out.append(chr(int(body[i + 3:end], 16))); i = end + 1; continue
        out.append({"n": "\n", "r": "\r", "t": "\t", "0": "\0", "\\": "\\", '"': '"', "'": "'"}.get(n, n)); i += 2
    return "".join(out).encode("utf-8", "surrogatepass")


def literals(*paths):
    found = []
    for path in paths:
        text = open(os.path.join(ROOT, path), encoding="utf-8").read()
        for m in LITERAL.finditer(text):
            try:
                found.append(unescape(m.group(2), m.group(1) == "#"))
            except (ValueError, IndexError):
                pass
    return found


def frame(payload):
    return struct.pack(">I", len(payload)) + payload


def write(target, seeds):
    folder = os.path.join(OUT, target)
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    for seed in {s for s in seeds}:
        name = hashlib.sha1(seed).hexdigest()[:16]
        open(os.path.join(folder, name), "wb").write(seed)
    print(f"{target}: {len(os.listdir(folder))} seeds")


http_valid = [
    b"GET /api/user/group HTTP/1.1\r\nHost: 127.0.0.1:9015\r\nAuthorization: Bearer abc\r\n\r\n",
    b"POST /api/user/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 33\r\n\r\nphoneNumber=admin&password=secret",
    b"POST /api/customers/customers HTTP/1.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"a\":\r\n3;ext=1\r\n12}\r\n0\r\nTrailer: v\r\n\r\n",
    b"GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /livez HTTP/1.1\r\nConnection: close\r\n\r\n",
    b"PUT /api/user/group HTTP/1.1\r\nContent-Length: 0\r\nExpect: 100-continue\r\n\r\n",
    b"OPTIONS * HTTP/1.1\r\n\r\n",
]
http_tests = [s if (b"\r\n\r\n" in s or b"\n\n" in s) else s + b"\r\n\r\n"
              for s in literals("Tests/GatewayTests/HTTPRequestParserTests.swift") if len(s) > 2]
write("HTTPRequestParser", http_valid + http_tests)

json_valid = [
    b'{"op":"request","id":"r-1","method":"GET","path":"/api/user/group","caller":{"id":1,"role":1},"params":{"status":"1","ids":[1,2,3]}}',
    b'{"status":0,"msg":"\xe6\x9f\xa5\xe8\xaf\xa2\xe6\x88\x90\xe5\x8a\x9f","data":[{"id":1,"name":"\xe5\xbc\xa0\xe4\xb8\x89","amount":112.5,"deleted":false,"note":null}],"page_info":{"total":1,"page":1,"count":20}}',
    b'[1,-0,0.5,1e-7,1.5E+300,-9223372036854775808,9223372036854775808,123456789012345678901234567890]',
    b'"\\ud83d\\ude00 \\u00e9\\n\\t\\"\\\\\\/"',
    b'{"a":1,"a":2,"b":{"a":[]}}',
    b'[' * 64 + b']' * 64,
    b' \t\r\n true ',
]
json_tests = literals("Tests/WireProtocolTests/JSONTests.swift")
write("JSONParser", json_valid + json_tests)

frames = [frame(s) for s in json_valid[:3]]
write("FrameDecoder", frames + [b"".join(frames), frame(b""), frame(b"x") * 3, b"\x00\x00\x00\x05hel",
                                 b"\xff\xff\xff\xff", b"\x01\x00\x00\x01" + b"a" * 16]
      + [frame(s) for s in literals("Tests/WireProtocolTests/FrameDecoderTests.swift") if s])

form_valid = [b"phoneNumber=admin&password=secret", b"ids[]=1&ids[]=2&name=%E5%BC%A0%E4%B8%89+x",
              b"a=1&a=2&b=&c&=d&&e=%zz%4%%41%2B%26%3D", b"status=all&page=2&count=100"]
form_tests = literals("Tests/GatewayTests/FormDecoderTests.swift", "Tests/GatewayTests/RequestParamsTests.swift")
write("FormDecoder", form_valid + form_tests)

params_valid = [
    json.dumps(v, ensure_ascii=False).encode() for v in [
        {"id": 3, "ids": [1, 2, 2, 3], "page": 2, "count": 500, "status": "all", "amount": 112.5},
        {"ids": "[1,2,3]", "amount": "0.10", "start_time": "2020-12-11", "end_time": "2020-12-12 00:00:02"},
        {"ids": ["1,2", "3"], "status": "open", "name": "  \u5f20\u4e09  ", "day": "2024-02-29 23:59:59"},
        {"id": 1.0, "page": "9999999999", "count": "-1", "amount": 1e13, "status": [1]},
    ]] + [b"1,2,3", b" 42 ", b"2020-02-30", b"0.5", b"[1,2]"]
params_tests = literals("Tests/ServiceKitTests/ParamsTests.swift")
write("Params", params_valid + params_tests)

message_valid = [
    b'{"kind":"request","id":4,"method":"GET","path":"/api/user/group","params":{},"caller":{"id":1,"role":1},"rid":"gw-8b45a8fb71d3a464-2","deadline":1796001664022,"session":"NAuKriFl5wp4uIdanrVuNUHnWqoXaKoUO3Gm5yAs2uA","trace":"gw-8b45a8fb71d3a464-t3"}',
    b'{"kind":"request","id":3,"method":"POST","path":"/internal/session","params":{"token":"t"},"rid":"","deadline":0}',
    b'{"kind":"response","id":4,"status":200,"body":{"status":0,"msg":"ok","data":[{"id":1}]}}',
    b'{"kind":"response","id":9,"status":201,"headers":{"set-cookie":"a=b"},"body":null}',
    b'{"kind":"ping","id":1}', b'{"kind":"drain","last":3}', b'{"kind":"hello","version":1,"peer":"gateway","replica":"r"}',
    b'{"status":0}', b'[1,2]', b'"x"',
]
message_tests = literals("Tests/WireProtocolTests/EnvelopeTests.swift")
write("Message", message_valid + message_tests)
