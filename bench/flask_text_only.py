"""The Flask reference (../shared/reference/flask_app.py) doing the OCR work
roadsign does by default: Tesseract on the detections of text-bearing
classes only (TEXT_CLASSES, comma-separated), the other detections answered
with an empty text. Everything else is the reference's own: its model,
preprocessing and Tesseract call, imported, not copied; only the view that
loops over the detections is replaced, by the same loop with the class
filter. Run from the reference's folder with this folder on PYTHONPATH:

    TEXT_CLASSES=stop,speed_limit gunicorn -w 2 flask_text_only:app
"""
import os
import time

import cv2
import numpy as np
from flask import jsonify, request

import flask_app
from flask_app import app

TEXT_CLASSES = set(filter(None, os.environ.get("TEXT_CLASSES", "").split(",")))


def predict():
    if "file" not in request.files:
        return jsonify(error="missing multipart field 'file'"), 400
    data = request.files["file"].read()
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        return jsonify(error="could not decode image"), 400
    t0 = time.perf_counter()
    res = flask_app.model.predict(img, imgsz=flask_app.IMGSZ, conf=flask_app.CONF, device="cpu",
                                  verbose=False)[0]
    t1 = time.perf_counter()
    dets = []
    h, w = img.shape[:2]
    for xyxy, conf, cls in zip(res.boxes.xyxy.tolist(), res.boxes.conf.tolist(), res.boxes.cls.tolist()):
        x1, y1, x2, y2 = (int(round(v)) for v in xyxy)
        name = res.names[int(cls)]
        text = ""
        if name in TEXT_CLASSES:
            text = flask_app.ocr(img[max(0, y1):min(h, y2), max(0, x1):min(w, x2)])
        dets.append({"class": name, "class_id": int(cls), "confidence": round(conf, 4),
                     "bbox": [x1, y1, x2, y2], "text": text})
    t2 = time.perf_counter()
    return jsonify(detections=dets, image_size=[w, h],
                   timing_ms={"detect": round((t1 - t0) * 1e3, 1), "ocr": round((t2 - t1) * 1e3, 1)})


app.view_functions["predict"] = predict
