"""Makes the French voice files of the audio bot challenge: run once, the files are shipped.

    python services/structure/captcha_voices/make_voices.py   # needs espeak-ng (Debian: espeak-ng)

For each character of `captcha.ALPHABET`, a directory named after it holds the character said
in French by a few eSpeak NG voices, as `captcha.audio.AudioCaptcha` reads them: WAV, mono, 8 bits
unsigned, 8 kHz. eSpeak NG speaks at 22,050 Hz, 16 bits: each recording is trimmed of its
silences, low-pass filtered and resampled (a windowed sinc), then scaled to the full 8-bit range.
The program is needed only here: the service reads the files it wrote.
"""

from __future__ import annotations

import math
import subprocess
import sys
import tempfile
import wave
from array import array
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2]))

from services.structure.captcha import ALPHABET, VOICE_SAMPLE_RATE  # noqa: E402

VOICES = {"homme": "fr+m3", "femme": "fr+f2", "homme-grave": "fr+m7"}
WORDS_PER_MINUTE = 140  # a little slower than eSpeak's 175: each character stands alone
CUTOFF_HZ = 3600.0  # below Nyquist at 8 kHz
TAPS_EACH_SIDE = 32
SILENCE_FRACTION = 0.02  # of the peak: quieter at either end is cut
MARGIN_SECONDS = 0.02
PEAK = 0.9  # of the 8-bit range


def spoken(character: str, voice: str) -> tuple[list[int], int]:
    """`character` said by eSpeak NG's `voice`: its 16-bit samples and their rate."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "said.wav"
        subprocess.run(
            ["espeak-ng", "-v", voice, "-s", str(WORDS_PER_MINUTE), "-w", str(path), character], check=True
        )
        with wave.open(str(path)) as said:
            assert said.getnchannels() == 1 and said.getsampwidth() == 2
            return list(array("h", said.readframes(said.getnframes()))), said.getframerate()


def trimmed(samples: list[int], rate: int) -> list[int]:
    threshold = max(abs(s) for s in samples) * SILENCE_FRACTION
    loud = [i for i, s in enumerate(samples) if abs(s) > threshold]
    margin = int(rate * MARGIN_SECONDS)
    return samples[max(0, loud[0] - margin) : loud[-1] + margin]


def resampled(samples: list[int], rate: int, new_rate: int) -> list[float]:
    """`samples` at `new_rate`, through a Hann-windowed sinc low-pass at CUTOFF_HZ."""
    step = rate / new_rate
    cutoff = CUTOFF_HZ / rate  # in cycles per input sample
    out = []
    for n in range(int(len(samples) / step)):
        centre = n * step
        first = max(0, math.ceil(centre - TAPS_EACH_SIDE))
        last = min(len(samples) - 1, math.floor(centre + TAPS_EACH_SIDE))
        total = 0.0
        for k in range(first, last + 1):
            x = k - centre
            window = 0.5 + 0.5 * math.cos(math.pi * x / TAPS_EACH_SIDE)
            kernel = 2 * cutoff if x == 0 else math.sin(2 * math.pi * cutoff * x) / (math.pi * x)
            total += samples[k] * kernel * window
        out.append(total)
    return out


def eight_bits(samples: list[float]) -> bytes:
    scale = PEAK * 127 / max(abs(s) for s in samples)
    return bytes(min(255, max(0, round(128 + s * scale))) for s in samples)


def write(path: Path, frames: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(1)
        out.setframerate(VOICE_SAMPLE_RATE)
        out.writeframes(frames)


def main() -> None:
    for character in ALPHABET:
        for name, voice in VOICES.items():
            samples, rate = spoken(character, voice)
            frames = eight_bits(resampled(trimmed(samples, rate), rate, VOICE_SAMPLE_RATE))
            write(HERE / character / f"{name}.wav", frames)
            print(character, name, f"{len(frames) / VOICE_SAMPLE_RATE:.2f} s")


if __name__ == "__main__":
    main()
