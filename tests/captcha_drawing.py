"""A bot-challenge drawer for tests: draws as in production and remembers each text it drew."""

from __future__ import annotations

from io import BytesIO

from captcha.image import ImageCaptcha


class RecordingDrawer(ImageCaptcha):
    """Draws as in production, and remembers the text of each image it drew."""

    def __init__(self) -> None:
        super().__init__(width=200, height=70)
        self.drawn: list[str] = []

    def generate(self, chars: str, format: str = "png", bg_color=None, fg_color=None) -> BytesIO:
        self.drawn.append(chars)
        return super().generate(chars, format=format, bg_color=bg_color, fg_color=fg_color)
