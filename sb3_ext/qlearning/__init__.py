from sb3_ext.qlearning.policies import TabularPolicy
from sb3_ext.qlearning.qlearning import QLearning

__all__ = ["QLearning", "TabularPolicy"]
