"""Dominant colour of each image (a coarse colour histogram's peak)."""

from dataclasses import dataclass

import numpy as np
import pandas as pd
from PIL import Image

from mixpeek_orchestration.sdk import download_asset


@dataclass
class ColorConfig:
    bins_per_channel: int = 4


class DominantColor:
    def __init__(self, config: ColorConfig, progress_actor=None):
        self.config = config

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        colours = []
        step = 256 // self.config.bins_per_channel
        for source in batch["data"]:
            image = Image.open(download_asset(str(source))).convert("RGB").resize((64, 64))
            pixels = (np.asarray(image).reshape(-1, 3) // step).astype(np.int64)
            codes = pixels[:, 0] * 10000 + pixels[:, 1] * 100 + pixels[:, 2]
            values, counts = np.unique(codes, return_counts=True)
            top = int(values[np.argmax(counts)])
            rgb = [
                (top // 10000) * step + step // 2,
                (top // 100 % 100) * step + step // 2,
                (top % 100) * step + step // 2,
            ]
            colours.append("#" + "".join(f"{c:02x}" for c in rgb))
        batch["dominant_color"] = colours
        return batch
