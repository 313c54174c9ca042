"""`veil run`'s ways for redacted frames to leave besides the recording: the preview page
([preview]) and the redacted stream out ([stream_out]). Both are off unless asked for, and
neither can carry anything but frames the redaction stage made."""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import Field, field_validator, model_validator

from edge.config.base import Closed as _Closed
from edge.config.base import Text

DEFAULT_PREVIEW_PORT = 8088


def _digits(text: str) -> bool:
    """ASCII digits only: str.isdigit() also takes "²" (which int() refuses) and other scripts'
    digits (which int() reads)."""
    return text.isascii() and text.isdigit()


def parse_bind(text: str) -> tuple[str, int]:
    """`HOST:PORT`, `[V6]:PORT` or a bare `PORT` (loopback) as (host, port). HOST must be an IP
    address or `localhost`: a name could resolve to any interface. ValueError otherwise."""
    text = text.strip()
    if _digits(text):
        host, port_text = "127.0.0.1", text
    elif text.startswith("["):
        host, sep, port_text = text[1:].partition("]:")
        if not sep:
            raise ValueError(f"{text!r}: expected [ADDRESS]:PORT")
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep or not host:
            raise ValueError(f"{text!r}: expected HOST:PORT, e.g. 127.0.0.1:{DEFAULT_PREVIEW_PORT}")
    if not _digits(port_text) or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"{text!r}: the port must be a number from 0 to 65535")
    if host != "localhost":
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise ValueError(
                f"{text!r}: the host must be an IP address or localhost, not a name"
            ) from None
    return host, int(port_text)


def is_loopback(host: str) -> bool:
    return host == "localhost" or ipaddress.ip_address(host).is_loopback


class PreviewConfig(_Closed):
    """The preview page: the redacted picture and the run's status, for whoever aims the camera."""

    bind: Text = Field(
        "",
        max_length=80,
        description="HOST:PORT to serve the page on; empty = no preview (`veil run --preview` "
        "overrides it). Anything but a loopback address needs require_token",
    )
    fps: float = Field(5.0, ge=0.2, le=30.0, description="frames a second on the page's stream")
    long_side: int = Field(
        640, ge=160, le=3840, description="the page's picture is scaled so its long side is this"
    )
    quality: int = Field(70, ge=20, le=95, description="JPEG quality of the page's picture")
    max_clients: int = Field(
        4, ge=1, le=32, description="pictures served at once; one more client is turned away"
    )
    require_token: bool = Field(
        True,
        description="every request needs the access token (`veil preview url`); may be false "
        "only on a loopback bind",
    )
    tls: bool = Field(
        False,
        description="serve HTTPS with a self-signed certificate made beside the device key "
        "(`veil preview url` prints its fingerprint)",
    )

    @field_validator("bind")
    @classmethod
    def _bind(cls, value: str) -> str:
        if value:
            parse_bind(value)
        return value

    @model_validator(mode="after")
    def _closed(self) -> PreviewConfig:
        if self.bind and not self.require_token and not is_loopback(parse_bind(self.bind)[0]):
            raise ValueError(
                f"preview bind {self.bind} is not loopback: it needs require_token = true"
            )
        return self


class StreamOutConfig(_Closed):
    """The redacted stream out, for a recorder (an NVR behind an RTSP server) or a pipe."""

    url: Text = Field(
        "",
        max_length=2000,
        description="rtsp://HOST:PORT/PATH to push H.264 to (an RTSP server such as MediaMTX), "
        "or - for standard output; empty = none (`veil run --stream-out` overrides it)",
    )
    stdout_format: Literal["mpegts", "mjpeg"] = Field(
        "mpegts", description="what `-` writes: H.264 in MPEG-TS, or MJPEG"
    )
    crf: int = Field(23, ge=0, le=40, description="x264 quality of the stream")
    preset: Literal["ultrafast", "superfast", "veryfast", "faster"] = Field(
        "ultrafast", description="x264 speed preset; it shares the CPU with the recording"
    )
    keyframe_seconds: float = Field(
        1.0, ge=0.2, le=10.0, description="keyframe interval: how soon a new reader sees a picture"
    )
    queue: int = Field(
        30,
        ge=1,
        le=120,
        description="frames waiting for a slow receiver; when full the oldest is dropped and "
        "counted, never the recording (the frames a live run holds back, up to "
        "track.lookahead, reach it together when the run stops; memory: this many frames)",
    )
    timeout_s: float = Field(
        5.0, ge=0.5, le=60.0, description="a receiver that takes no data this long is lost"
    )
    reconnect_min_s: float = Field(0.5, ge=0.05, le=60.0, description="first wait to reconnect")
    reconnect_max_s: float = Field(
        10.0, ge=0.1, le=600.0, description="longest wait between reconnecting attempts (backoff)"
    )

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if value and value != "-" and not value.startswith(("rtsp://", "rtsps://")):
            raise ValueError("expected rtsp://HOST:PORT/PATH, rtsps://..., or - for stdout")
        return value

    @model_validator(mode="after")
    def _backoff(self) -> StreamOutConfig:
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError("reconnect_max_s must be at least reconnect_min_s")
        return self
