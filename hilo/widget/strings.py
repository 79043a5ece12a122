"""The widget's own words: sent to the widget by the config endpoint in the visitor's language."""

from __future__ import annotations

from hilo.i18n import N_, gettext

# What a widget says when it opens, unless its channel sets a greeting of its own.
DEFAULT_GREETING = N_("Hi! How can we help you today?")

UI: dict[str, str] = {
    "open": N_("Open the chat"),
    "close": N_("Close the chat"),
    "messages": N_("Messages"),
    "composer": N_("Your message"),
    "placeholder": N_("Write a message…"),
    "send": N_("Send"),
    "attach": N_("Attach a file"),
    "typing": N_("{name} is typing…"),
    "seen": N_("Seen"),
    "sending": N_("Sending…"),
    "queued": N_("Not sent yet: it will go as soon as the connection is back."),
    "reconnecting": N_("Connection lost. Reconnecting…"),
    "prechat": N_("Before we start, tell us a little about you."),
    "offline_title": N_("We are away right now"),
    "offline": N_("Leave us a message and we will answer by e-mail."),
    "name": N_("Name"),
    "email": N_("E-mail"),
    "phone": N_("Phone"),
    "message": N_("Message"),
    "optional": N_("(optional)"),
    "start": N_("Start the chat"),
    "leave": N_("Send message"),
    "required": N_("This field is required."),
    "invalid_email": N_("This is not a valid e-mail address."),
    "thanks": N_("Thank you! We will answer by e-mail as soon as we can."),
    "too_large": N_("This file is too large: the limit is {size}."),
    "bad_type": N_("This kind of file cannot be sent."),
    "error": N_("Something went wrong. Please try again."),
    "unavailable": N_("The chat is not available right now."),
    "you": N_("You"),
    "unread": N_("New messages"),
}


def ui_strings(locale: str) -> dict[str, str]:
    return {key: gettext(msgid, locale) for key, msgid in UI.items()}
