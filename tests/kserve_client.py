"""A v2 (Open Inference Protocol) client nobody here wrote, against a running
`roadsign serve`: NVIDIA's tritonclient[http], with encoded images (BYTES) and
pixels (UINT8), binary data on and off, a batch; every JSON answer checked
against the protocol's OpenAPI file. Run by tests/kserve.rs, which starts the
server and makes the scene (a stop sign at a known box).

usage: kserve_client.py URL MODEL SCENE_PNG BOX_JSON OPENAPI_YAML
"""

import base64
import json
import sys
import urllib.error
import urllib.request

import jsonschema
import numpy as np
import tritonclient.http as http
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012


def main():
    url, model, scene_path, box_json, openapi_path = sys.argv[1:6]
    truth = json.loads(box_json)
    with open(openapi_path) as f:
        spec = yaml.safe_load(f)
    registry = Registry().with_resource(
        "urn:oip", Resource.from_contents(spec, default_specification=DRAFT202012)
    )

    def conforms(schema, instance):
        jsonschema.Draft202012Validator(
            {"$ref": f"urn:oip#/components/schemas/{schema}"}, registry=registry
        ).validate(instance)

    client = http.InferenceServerClient(url=url)
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready(model)
    assert not client.is_model_ready("no-such-model")
    server = client.get_server_metadata()
    conforms("metadata_server_response", server)
    assert "binary_tensor_data" in server["extensions"], server
    meta = client.get_model_metadata(model)
    conforms("metadata_model_response", meta)
    assert {(t["name"], t["datatype"]) for t in meta["inputs"]} == {
        ("image", "BYTES"),
        ("pixels", "UINT8"),
    }, meta
    assert [(t["name"], t["datatype"], t["shape"]) for t in meta["outputs"]] == [
        ("boxes", "FP32", [-1, 4]),
        ("scores", "FP32", [-1]),
        ("classes", "BYTES", [-1]),
        ("texts", "BYTES", [-1]),
    ], meta

    with open(scene_path, "rb") as f:
        encoded = f.read()
    pixels = png_pixels(scene_path)

    def check_stop(result, batch_index=None):
        boxes = result.as_numpy("boxes")
        scores = result.as_numpy("scores")
        classes = result.as_numpy("classes")
        texts = result.as_numpy("texts")
        if batch_index is not None:
            boxes, scores = boxes[batch_index], scores[batch_index]
            classes, texts = classes[batch_index], texts[batch_index]
        assert boxes.dtype == np.float32 and boxes.shape[1:] == (4,), boxes.shape
        assert scores.shape == classes.shape == texts.shape == boxes.shape[:1]
        names = [c.decode() if isinstance(c, bytes) else c for c in classes]
        found = [
            i for i, c in enumerate(names) if c == "stop" and iou(boxes[i], truth) > 0.5
        ]
        assert found, f"no stop sign near {truth}: {names} {boxes}"
        text = texts[found[0]]
        assert (text.decode() if isinstance(text, bytes) else text) == "STOP", texts
        assert 0.25 <= scores[found[0]] <= 1.0, scores
        return boxes, scores

    outputs = ["boxes", "scores", "classes", "texts"]
    results = []
    # Encoded images as BYTES, binary data on and off, outputs both ways.
    for binary_in in (True, False):
        for binary_out in (True, False):
            if binary_in:
                tensor = np.array([encoded], dtype=np.object_)
            else:
                # JSON carries BYTES as UTF-8 strings: base64 for images.
                tensor = np.array([base64.b64encode(encoded)], dtype=np.object_)
            inp = http.InferInput("image", [1], "BYTES")
            inp.set_data_from_numpy(tensor, binary_data=binary_in)
            wanted = [http.InferRequestedOutput(n, binary_data=binary_out) for n in outputs]
            results.append(check_stop(client.infer(model, [inp], outputs=wanted)))
    # Pixels as UINT8 [H, W, 3], binary on and off.
    for binary_in in (True, False):
        inp = http.InferInput("pixels", list(pixels.shape), "UINT8")
        inp.set_data_from_numpy(pixels, binary_data=binary_in)
        results.append(check_stop(client.infer(model, [inp])))
    for boxes, scores in results[1:]:
        assert np.allclose(boxes, results[0][0]) and np.allclose(scores, results[0][1])
    # A batch of two in one request: one leading dimension per image.
    inp = http.InferInput("image", [2], "BYTES")
    inp.set_data_from_numpy(np.array([encoded, encoded], dtype=np.object_), binary_data=True)
    batch = client.infer(model, [inp], parameters={"conf": 0.3})
    assert batch.as_numpy("boxes").shape[0] == 2
    for i in range(2):
        check_stop(batch, i)
    # Only the outputs asked for.
    inp = http.InferInput("image", [1], "BYTES")
    inp.set_data_from_numpy(np.array([encoded], dtype=np.object_), binary_data=True)
    only = client.infer(model, [inp], outputs=[http.InferRequestedOutput("texts")])
    assert only.as_numpy("boxes") is None and only.as_numpy("texts") is not None

    # The raw JSON answers against the protocol's schemas.
    body = {
        "id": "42",
        "inputs": [
            {
                "name": "image",
                "shape": [1],
                "datatype": "BYTES",
                "data": [base64.b64encode(encoded).decode()],
            }
        ],
    }
    status, answer = post(f"http://{url}/v2/models/{model}/infer", body)
    assert status == 200, answer
    conforms("inference_response", answer)
    assert answer["id"] == "42" and answer["model_name"] == model, answer
    for bad, expected in [
        ({"inputs": [{"name": "image", "shape": [1], "datatype": "BYTES", "data": ["%%"]}]}, 400),
        ({"inputs": []}, 400),
    ]:
        status, answer = post(f"http://{url}/v2/models/{model}/infer", bad)
        assert status == expected, (status, answer)
        conforms("inference_error_response", answer)
        assert "error" in answer
    status, answer = post(f"http://{url}/v2/models/no-such-model/infer", body)
    assert status == 404, (status, answer)
    conforms("inference_error_response", answer)
    print("v2 client: all checks passed")


def post(url, body):
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def png_pixels(path):
    """The scene's RGB pixels, read by the test beside the PNG (raw, H W 3)."""
    with open(path + ".rgb", "rb") as f:
        raw = f.read()
    with open(path + ".shape") as f:
        h, w = (int(x) for x in f.read().split())
    return np.frombuffer(raw, dtype=np.uint8).reshape(h, w, 3).copy()


def iou(a, b):
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    area = lambda r: (r[2] - r[0]) * (r[3] - r[1])  # noqa: E731
    return inter / (area(a) + area(b) - inter)


if __name__ == "__main__":
    main()
