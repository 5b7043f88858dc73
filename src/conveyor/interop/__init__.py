"""Other CI systems' files: GitHub Actions workflows and `.gitlab-ci.yml` run as they are
(translated to a conveyor.yml pipeline), and audited for the field's anti-patterns.

Modules: `github` (workflows), `audit` (findings on workflow files). A feature package:
imports config, graph, workspace and the shared types; never run or cli."""
