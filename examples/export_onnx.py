"""Export a checkpoint to ONNX, then vocode a wav with ONNX Runtime (pip install -e ".[export]"):

    python examples/export_onnx.py CHECKPOINT speech.wav vocoder.onnx speech_vocoded.wav

The audio equals `python -m vocoder.infer`'s to 1e-4 (a model with a pitch source: docs/export.md says
when its F0 can land a grid step apart); only the mel comes from this package here.
"""
import json
import os
import sys

import onnxruntime
import soundfile

from vocoder import Vocoder
from vocoder.audio import MelSpectrogram, load_audio

checkpoint, speech, model, output = sys.argv[1:5]
for path in (model, output):  # nothing of yours is replaced
    if os.path.exists(path):
        sys.exit(f"export_onnx.py: {path} already exists; give a new path")
Vocoder.from_checkpoint(checkpoint, device="cpu").export_onnx(model)  # or: python -m vocoder.export
session = onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"])
record = json.loads(session.get_modelmeta().custom_metadata_map["vocoder.model"])  # generator + mel settings
mel = MelSpectrogram.from_config(record["mel"])
wav, _ = load_audio(speech, mel.sampling_rate)  # mono, resampled to the model's rate
audio = session.run(None, {"mel": mel(wav)[None].numpy()})[0][0]
with open(output, "xb") as file:  # "x": fails rather than replace a file that appeared meanwhile
    soundfile.write(file, audio, mel.sampling_rate, subtype="FLOAT", format="WAV")
