"""World models for model-based agents: the RSSM (Dreamer V1 / V2) and its heads."""

from rlnas.world_models.rssm import RSSM, State, straight_through_onehot
from rlnas.world_models.world_model import WorldModel

__all__ = ["RSSM", "State", "WorldModel", "straight_through_onehot"]
