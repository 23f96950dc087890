"""`nestvec plan`: measure dims × precision × strategy on real queries and pick by evidence."""

from nestvec.plan.measure import Candidate, Measurement, candidates, measure_all
from nestvec.plan.workload import Workload, from_beir, from_collection

__all__ = ["Candidate", "Measurement", "Workload", "candidates", "from_beir", "from_collection", "measure_all"]
