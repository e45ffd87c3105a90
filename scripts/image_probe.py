#!/usr/bin/env python3
"""HTTP probes of a running roadsign server, for scripts/image-test.sh.

  bad-inputs URL JPEG   every bad input of tests/serve.rs (at the default limits) gets
                        its 4xx and a JSON {"error": ...}; /health answers 200 after each
  video URL MP4         /predict/video answers 200 video/mp4 (ffmpeg in the image works)
  in-flight URL JPEG N  sends N requests, prints "sent" once every body is out, then
                        expects 200 for each (a SIGTERM arrives in between)

Standard library only: it runs on the host, against the container.
"""
import http.client
import json
import pathlib
import sys
import threading
import urllib.parse

BOUNDARY = "roadsign-image-probe"


def form(field, filename, content_type, data):
    head = (
        f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{field}\"; "
        f"filename=\"{filename}\"\r\nContent-Type: {content_type}\r\n\r\n"
    ).encode()
    return head + data + f"\r\n--{BOUNDARY}--\r\n".encode()


def connect(url):
    parts = urllib.parse.urlsplit(url)
    return http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)


def request(url, method, path, body=None, content_type=None):
    conn = connect(url)
    headers = {"Content-Type": content_type} if content_type else {}
    try:
        conn.request(method, path, body=body, headers=headers)
    except (BrokenPipeError, ConnectionResetError):
        # A server may answer (413) and close before the whole body is out:
        # its answer is still there to read.
        pass
    reply = conn.getresponse()
    data = reply.read()
    conn.close()
    return reply.status, reply.getheader("Content-Type", ""), data


def post_file(url, path, content_type, data, field="file"):
    return request(url, "POST", path, form(field, "upload", content_type, data),
                   f"multipart/form-data; boundary={BOUNDARY}")


# The attack corpus the hostile tests send (tests/hostile/corpus).
CORPUS = pathlib.Path(__file__).resolve().parent.parent / "tests" / "hostile" / "corpus"


def bad_inputs(url, jpeg_path):
    jpeg = open(jpeg_path, "rb").read()
    cases = [
        ("garbage", post_file(url, "/predict", "image/jpeg", b"this is not an image"), 400),
        ("truncated", post_file(url, "/predict", "image/jpeg", jpeg[: len(jpeg) // 3]), 400),
        ("empty", post_file(url, "/predict/image", "image/png", b""), 400),
        ("text type", post_file(url, "/predict", "text/plain", jpeg), 415),
        ("raw json", request(url, "POST", "/predict", b"{}", "application/json"), 415),
        ("gif", post_file(url, "/predict", "image/gif", (CORPUS / "tiny.gif").read_bytes()), 415),
        ("bomb", post_file(url, "/predict", "image/png",
                           (CORPUS / "bomb_100000x100000.png").read_bytes()), 413),
        # The default serve.max_upload_mb is 20.
        ("oversized", post_file(url, "/predict", "image/jpeg", bytes(21 * 1024 * 1024)), 413),
        ("no file field", post_file(url, "/predict", "image/jpeg", jpeg, field="picture"), 400),
        ("image on /predict/video", post_file(url, "/predict/video", "image/png", jpeg), 415),
        ("garbage video", post_file(url, "/predict/video", "video/mp4", b"not a video"), 400),
        ("unknown route", request(url, "GET", "/nothing"), 404),
        ("wrong method", request(url, "GET", "/predict"), 405),
    ]
    failures = 0
    for name, (status, _, body), want in cases:
        try:
            error = json.loads(body).get("error")
        except ValueError:
            error = None
        health, _, _ = request(url, "GET", "/health")
        ok = status == want and isinstance(error, str) and error and health == 200
        failures += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {name}: {status} (want {want}) "
              f"error={error!r} then /health {health}")
    return failures


def video(url, mp4_path):
    status, kind, body = post_file(url, "/predict/video", "video/mp4", open(mp4_path, "rb").read())
    ok = status == 200 and kind.startswith("video/mp4") and body[4:8] == b"ftyp"
    print(f"{'ok  ' if ok else 'FAIL'} /predict/video: {status} {kind} {len(body)} bytes")
    return 0 if ok else 1


def in_flight(url, jpeg_path, count):
    body = form("file", "scene.jpg", "image/jpeg", open(jpeg_path, "rb").read())
    conns = []
    for _ in range(count):
        conn = connect(url)
        conn.request("POST", "/predict", body=body,
                     headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})
        conns.append(conn)
    print("sent", flush=True)
    statuses = [None] * count

    def finish(i):
        try:
            reply = conns[i].getresponse()
            reply.read()
            statuses[i] = reply.status
        except OSError as e:
            statuses[i] = repr(e)

    threads = [threading.Thread(target=finish, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print("statuses", statuses, flush=True)
    return 0 if all(s == 200 for s in statuses) else 1


def main(argv):
    if len(argv) >= 4 and argv[1] == "bad-inputs":
        return 1 if bad_inputs(argv[2], argv[3]) else 0
    if len(argv) >= 4 and argv[1] == "video":
        return video(argv[2], argv[3])
    if len(argv) >= 5 and argv[1] == "in-flight":
        return in_flight(argv[2], argv[3], int(argv[4]))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
