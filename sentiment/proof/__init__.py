"""What proves a result: platform record, seed noise, reproduction, comparison, figures."""
