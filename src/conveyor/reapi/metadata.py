"""What Conveyor carries in an ActionResult's auxiliary metadata (REAPI's
ExecutedActionMetadata.auxiliary_metadata, a list of Any): shared by the job cache, the
remote executor and the worker, which each read or write results."""

from __future__ import annotations

MANIFEST_TYPE = "type.googleapis.com/conveyor.Manifest"
"""The type URL of the key's parts (the manifest) in a result's auxiliary metadata."""
VALUES_TYPE = "type.googleapis.com/conveyor.Values"
"""The type URL of the values a job wrote ($CONVEYOR_OUTPUT), a JSON list of [name,
value] pairs, in a result's auxiliary metadata: restored on a hit for the jobs after it,
and sent back by a worker that ran the job."""
