"""An async handler: the same embedding for a query."""

import asyncio

from .embed import embed_text, thumbnail_bytes


class Query:
    async def run_inference(self, inputs, parameters):
        await asyncio.sleep(0)
        normalized, vector = embed_text(inputs.get("text", ""))
        return {
            "embedding": vector,
            "normalized": normalized,
            "png_bytes": len(thumbnail_bytes(inputs.get("text", ""))),
        }
