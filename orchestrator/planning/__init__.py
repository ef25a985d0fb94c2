"""From a spec and the catalog to a Plan: the planner, the plan itself, load projections, pending changes and the vLLM serving contract."""
