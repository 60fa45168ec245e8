"""Routing (ACD): a pure decision core (``decision``) and the service that commits it.

Policy choices worth knowing:
- Routable agents are READY ones, and BUSY ones (already working) with spare capacity on
  the offered channel: an agent in two chats can take a third, never a second call.
  NOT_READY, WRAP_UP and OFFLINE agents get nothing new.
- Load per channel counts the agent's OFFERED, ACTIVE and WRAP_UP interactions.
- An agent who rejected, missed or transferred an interaction to a queue is not offered the
  same one again for ``REOFFER_COOLDOWN_SECONDS``, so it goes to the next agent.
- Queue configuration (queues, hours, queue and agent skills) is cached by the dispatcher for
  ``CONFIG_TTL_SECONDS``; admin pages publish ``routing`` "config" (or call
  ``services.routing.invalidate_config()``) after a change so it applies at once.
- A targeted transfer to an agent is a direct offer, outside the queue order.
- The dispatcher keeps its ``Router`` between passes and reads again only the rows that
  ``routing`` events name ("interaction", "agent", "offered"); every change of a waiting
  interaction or of an agent's presence or load must publish one (after commit). A full
  snapshot is read on "config", on any other event, when a commit finds a row taken
  elsewhere, when a queue opens or closes, when a re-offer cool-down ends, and every
  ``REBUILD_SECONDS``.
"""
