"""gradoracle's commands, on top of the oracle library (`oracles`) and the generators (`strategies`):
`python -m gradoracle <command>`."""
