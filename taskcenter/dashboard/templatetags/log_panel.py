"""The log panel's poller and state line, for the page: the same functions that write the
log poll's answer (taskcenter.dashboard.log_poll), so each has one renderer."""

from __future__ import annotations

from django import template

from taskcenter.dashboard import log_poll

register = template.Library()


@register.simple_tag
def log_poller(subtask, log):
    return log_poll.poller_html(subtask, log)


@register.simple_tag
def log_state(subtask, log, label):
    return log_poll.state_html(subtask, log, label)
