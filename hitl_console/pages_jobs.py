"""The Jobs pages: ``/jobs`` (start a crawl, the list) and ``/jobs/<id>`` (one job, its log
live, cancel). Shells only, like every page (pages.py): ``static/js/jobs.js`` and
``static/js/job.js`` fill them from ``/api/v1/jobs`` and keep them current from the event
stream and ``/ws/jobs/<id>/log``."""

from __future__ import annotations

from flask import Blueprint, abort, request

from hitl_console.api import state
from hitl_console.pages import _page, login_required
from scrapy_hitl.state import jobs
from scrapy_hitl.state.models import JOB_FINAL_STATES, JOB_STATES

bp = Blueprint("job_pages", __name__)


@bp.get("/jobs")
@login_required
def jobs_list() -> str:
    return _page("jobs.html", "jobs", statuses=JOB_STATES,
                 filters={k: request.args.get(k, "") for k in ("status", "project", "spider")})


@bp.get("/jobs/<int:job_id>")
@login_required
def job_detail(job_id: int) -> str:
    try:
        job = jobs.get(state().db, job_id)
    except jobs.JobNotFound:
        abort(404)
    return _page("job.html", "job", job=job, final_states=JOB_FINAL_STATES)
