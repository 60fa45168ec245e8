"""Routing (ACD): a pure decision core (``decision``) and the service that commits it.

Policy choices worth knowing:
- Routable agents are READY ones, and BUSY ones (already working) with spare capacity on
  the offered channel: an agent in two chats can take a third, never a second call.
  NOT_READY, WRAP_UP and OFFLINE agents get nothing new.
- Load per channel counts the agent's OFFERED, ACTIVE and WRAP_UP interactions, and the
  active text conversations they are conferenced into (``hub.text_collab``).
- An agent who rejected, missed or transferred an interaction to a queue is not offered the
  same one again for ``REOFFER_COOLDOWN_SECONDS``, so it goes to the next agent.
- Queue configuration (queues, hours, queue and agent skills) is cached by the dispatcher for
  ``CONFIG_TTL_SECONDS``; admin pages publish ``routing`` "config" (or call
  ``services.routing.invalidate_config()``) after a change so it applies at once.
- A targeted transfer to an agent is a direct offer, outside the queue order; so is a
  supervisor's reassignment to an agent (``RoutingService.reassign``).
- Work handed back (the agent went offline, was logged out, or a supervisor moved it to a
  queue) keeps its original ``queued_at``: it goes before everyone who came after it.
- Presence is what the console says (``hub.presence``): an agent whose console tabs are all
  gone for ``HUB_PRESENCE_GRACE_SECONDS`` goes OFFLINE and gets nothing more.
- The dispatcher keeps its ``Router`` between passes and reads again only the rows that
  ``routing`` events name ("interaction", "agent", "offered"); every change of a waiting
  interaction or of an agent's presence or load must publish one (after commit). A full
  snapshot is read on "config", on any other event, when a commit finds a row taken
  elsewhere, when a queue opens or closes, when a re-offer cool-down ends, and every
  ``REBUILD_SECONDS``.
"""
