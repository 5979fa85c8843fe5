from sb3_ext.d3qn.d3qn import D3QN
from sb3_ext.d3qn.policies import CnnPolicy, DuelingDQNPolicy, DuelingQNetwork, MlpPolicy, MultiInputPolicy

__all__ = ["D3QN", "CnnPolicy", "DuelingDQNPolicy", "DuelingQNetwork", "MlpPolicy", "MultiInputPolicy"]
