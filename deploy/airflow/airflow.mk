# Airflow 3 in its own venv: its pins (SQLAlchemy, FastAPI, ...) conflict with the project's.
# Included by the main Makefile; docs/airflow.md shows how to run the DAG.
PYTHON ?= python3
AIRFLOW_VENV := .venv-airflow
AIRFLOW_REQS := deploy/airflow/requirements.txt deploy/airflow/constraints.txt

.PHONY: airflow-setup
airflow-setup: $(AIRFLOW_VENV)/.installed ## install Airflow 3 and the Slack provider into .venv-airflow (own pins)

# constraints.txt pins every package (pip freeze of a working venv); torch is none of them and
# must stay out: the check fails the setup if some dependency ever pulls it in.
$(AIRFLOW_VENV)/.installed: $(AIRFLOW_REQS)
	test -x $(AIRFLOW_VENV)/bin/python || $(PYTHON) -m venv $(AIRFLOW_VENV)
	$(AIRFLOW_VENV)/bin/pip install --quiet --upgrade pip
	$(AIRFLOW_VENV)/bin/pip install --quiet -r deploy/airflow/requirements.txt \
	  -c deploy/airflow/constraints.txt
	@if $(AIRFLOW_VENV)/bin/pip show --quiet torch 2>/dev/null; then \
	  echo "airflow-setup: torch got into $(AIRFLOW_VENV); it must not" >&2; exit 1; fi
	$(AIRFLOW_VENV)/bin/pip check --quiet
	touch $@
