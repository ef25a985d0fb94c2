"""One plugin per cloud, all behind `providers.base.Provider`; found through `providers.registry`."""
