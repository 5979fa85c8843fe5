from sb3_ext.reinforce.policies import CnnPolicy, MlpPolicy, MultiInputPolicy
from sb3_ext.reinforce.reinforce import REINFORCE

__all__ = ["REINFORCE", "CnnPolicy", "MlpPolicy", "MultiInputPolicy"]
