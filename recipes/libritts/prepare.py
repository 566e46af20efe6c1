"""Write LibriTTS filelists: python recipes/libritts/prepare.py /path/to/LibriTTS [--train ...] [--val ...]."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from a checkout without installing

from vocoder.data.libritts import main  # noqa: E402

if __name__ == "__main__":
    main()
