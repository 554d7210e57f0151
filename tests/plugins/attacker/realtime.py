"""The same attacks, named by ``inputs.text``, in a realtime handler."""

from .processors.attacks import run_attack


class AttackHandler:
    async def run_inference(self, inputs, parameters):
        return {"embedding": [1.0, 0.0, 0.0, 0.0], "result": run_attack(inputs["text"])}
