"""What an index's vectors depend on (model, dimension, chunking, precision): recorded in each
manifest and compared with the settings, so an index built otherwise is refused."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from qa.core.config import Settings


@dataclass(frozen=True)
class BuildSettings:
    """What the stored vectors depend on; any change means the index must be rebuilt."""

    embedding_model: str  # the name in the settings
    dim: int  # from the loaded model
    max_tokens: int
    overlap_tokens: int
    embed_title: bool
    # Fingerprint of the weights actually loaded (qa.embedding.base.model_fingerprint); empty in
    # indexes written before it was recorded, which are then trusted by name.
    model_fingerprint: str = ""
    # "fp32" or "int8" (embedding.precision); indexes written before it was recorded are fp32.
    precision: str = "fp32"

    @classmethod
    def from_settings(cls, settings: Settings, dim: int, fingerprint: str = "") -> BuildSettings:
        return cls(
            embedding_model=settings.embedding.model,
            dim=dim,
            max_tokens=settings.chunking.max_tokens,
            overlap_tokens=settings.chunking.overlap_tokens,
            embed_title=settings.chunking.embed_title,
            model_fingerprint=fingerprint,
            precision=settings.embedding.precision,
        )

    def differences(self, wanted: BuildSettings) -> list[str]:
        """What differs, one phrase per setting ("" on either side: not recorded, not compared)."""
        diffs = []
        for key, have in asdict(self).items():
            want = getattr(wanted, key)
            if key == "precision" and have != want:
                diffs.append(
                    f"embedding precision: index has {have}, settings say {want} "
                    "(embedding.precision)"
                )
            elif key == "model_fingerprint":
                # int8 weights have an identity of their own: said once, as the precision.
                if have and want and have != want and self.precision == wanted.precision:
                    diffs.append(
                        f"model weights: index has {have}, the loaded model is {want} "
                        "(another model under the same name)"
                    )
            elif have != want:
                diffs.append(f"{key}: index has {have!r}, settings say {want!r}")
        return diffs

    def compatible(self, other: BuildSettings) -> bool:
        return not self.differences(other)
