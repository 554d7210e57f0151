"""attacker: each row (or realtime request) names an attack the sandbox must stop.

Every attack here passes the security scanner (it only uses allowed libraries), so it reaches
the sandboxed plugin host; what it tries is looked for from outside by the tests.
"""

from pydantic import BaseModel


class AttackInput(BaseModel):
    text: str


class AttackOutput(BaseModel):
    embedding: list[float]
    result: str


metadata = {
    "feature_extractor_name": "attacker",
    "version": "1.0.0",
    "description": "the sandbox's adversarial corpus",
    "category": "text",
}
input_schema = AttackInput
output_schema = AttackOutput
supported_input_types = ["text"]
features = [{"feature_name": "attacker_embedding", "feature_type": "embedding", "embedding_dim": 4}]
serve_config = {"min_replicas": 1, "max_replicas": 1, "num_cpus": 0.5}
