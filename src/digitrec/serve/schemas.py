"""The API's request and response shapes: validation and the OpenAPI page (``/docs``)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

Pixel = Annotated[int, Field(ge=0, le=255, strict=True)]
Row = Annotated[list[Pixel], Field(min_length=28, max_length=28)]
# POST /api/read?method=...: digitrec.inference.reading.METHODS (a test keeps them equal).
ReadMethod = Literal["seq", "segment", "auto"]

IMAGE_HELP = (
    "A PNG, JPEG, BMP, GIF, WebP or TIFF image, base64-encoded (a `data:image/...;base64,` "
    "prefix is accepted). Any size up to the pixel cap; dark ink on light paper or the reverse."
)
PIXELS_HELP = (
    "28 rows of 28 integers 0-255, grey levels of any polarity. An MNIST-style digit (white "
    "on black, ink box 20 px) is used as it is, only re-centred; anything else is normalised "
    "like a photo."
)


class ImageInput(BaseModel):
    """One image: exactly one of ``image`` or ``pixels``."""

    model_config = ConfigDict(extra="forbid")

    image: str | None = Field(default=None, description=IMAGE_HELP)
    pixels: Annotated[list[Row], Field(min_length=28, max_length=28)] | None = Field(
        default=None, description=PIXELS_HELP
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> ImageInput:
        if (self.image is None) == (self.pixels is None):
            raise ValueError(
                "give exactly one of 'image' (base64 PNG/JPEG) or 'pixels' "
                "(28 rows of 28 integers 0-255)"
            )
        return self


class BatchInput(BaseModel):
    """Several images, each as for ``POST /api/predict`` (at most the server's ``max_batch``)."""

    model_config = ConfigDict(extra="forbid")

    images: list[ImageInput] = Field(min_length=1)


class Prediction(BaseModel):
    """What the model says about one digit."""

    digit: int = Field(description="the most likely digit, 0-9")
    confidence: float = Field(description="its probability")
    probabilities: list[float] = Field(description="P(0) ... P(9)")
    preview_png: str = Field(
        description="the 28x28 image the network saw (after preprocessing), base64 PNG"
    )
    rejected: bool | None = Field(
        None, description="'not a digit': the reject score is above the model's threshold"
    )
    reject_score: float | None = Field(
        None, description="the reject score, 0..1 (high: not a digit); absent without a threshold"
    )
    low_confidence: bool | None = Field(
        None,
        description="the answer deserves a second look (its probability is below the threshold "
        "chosen on the development set); absent for a rejected image",
    )
    low_confidence_reason: str | None = Field(None, description="why, when low_confidence")


class BatchItem(BaseModel):
    """One image of a batch: a prediction, or why there is none."""

    index: int
    digit: int | None = None
    confidence: float | None = None
    probabilities: list[float] | None = None
    preview_png: str | None = None
    rejected: bool | None = None
    reject_score: float | None = None
    low_confidence: bool | None = None
    low_confidence_reason: str | None = None
    error: str | None = Field(default=None, description="e.g. 'no digit found: ...'")
    status: int | None = Field(
        default=None, description="the HTTP status this error would have on its own"
    )


class BatchResult(BaseModel):
    """The results in the order the images were sent."""

    results: list[BatchItem]


class Box(BaseModel):
    """A digit's bounding box in the uploaded image's pixels (x1, y1 exclusive)."""

    x0: int
    y0: int
    x1: int
    y1: int


class ReadDigit(Prediction):
    """One digit of a number: the reader's answer, so the digits spell ``number``."""

    confidence: float = Field(description="the reader's probability for this digit")
    probabilities: list[float] | None = Field(
        None,
        description="P(0) ... P(9) from the digit model for the crop in preview_png; null when "
        "the digit model reads that crop differently (the sequence reader's answer won)",
    )
    preview_png: str = Field(
        description="the 28x28 crop at the digit's box, as the digit model sees it, base64 PNG"
    )
    box: Box


class Reading(BaseModel):
    """A number read left to right."""

    number: str = Field(
        description="the digits left to right ('?' for a piece that is not a digit), with a "
        "decimal point or a separator space where the writing has one"
    )
    low_confidence: bool = Field(description="some digit deserves a second look")
    low_confidence_reason: str | None = Field(
        None, description="which digits, and why ('digit 2: probability 0.496 is below 0.50')"
    )
    method: str = Field(
        description="what gave the answer: 'segment', 'seq', 'auto: both agree', 'auto: seq' or "
        "'auto: segment'"
    )
    digits: list[ReadDigit]
    width: int = Field(description="the image's width in pixels")
    height: int = Field(description="the image's height in pixels")


class ModelInfo(BaseModel):
    """The model behind the API and the server's limits."""

    name: str
    arch: str
    backend: str = Field(description="'torch' or 'onnxruntime'")
    parameters: int
    test_accuracy: float | None = Field(description="MNIST test accuracy, when recorded")
    num_classes: int
    tta: bool
    input_size: int
    digitrec_version: str
    limits: dict[str, float]


class Health(BaseModel):
    """The server is up and its model is loaded."""

    status: str = "ok"


class ErrorBody(BaseModel):
    """Every error: a JSON object with one readable message."""

    detail: str


def describe(exc: ValidationError) -> str:
    """One readable line for a pydantic validation error (the first problem, and a count)."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    loc = ".".join(str(part) for part in first.get("loc", ()))
    if first.get("type") == "json_invalid":
        return f"malformed JSON: {first.get('ctx', {}).get('error', first['msg'])}"
    msg = str(first["msg"]).removeprefix("Value error, ")
    text = f"{loc}: {msg}" if loc else msg
    if loc.startswith("pixels") or "pixels." in loc:
        text += " (pixels must be 28 rows of 28 integers 0-255)"
    if len(errors) > 1:
        text += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    return text
