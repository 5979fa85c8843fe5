from sb3_ext.rainbow.policies import CategoricalQNetwork, CnnPolicy, MlpPolicy, MultiInputPolicy, RainbowPolicy
from sb3_ext.rainbow.rainbow import Rainbow

__all__ = ["CategoricalQNetwork", "CnnPolicy", "MlpPolicy", "MultiInputPolicy", "Rainbow", "RainbowPolicy"]
