"""Routing (ACD): a pure decision core (``decision``) and the service that commits it.

Policy choices worth knowing:
- Routable agents are READY ones, and BUSY ones (already working) with spare capacity on
  the offered channel: an agent in two chats can take a third, never a second call.
  NOT_READY, WRAP_UP and OFFLINE agents get nothing new.
- Load per channel counts the agent's OFFERED, ACTIVE and WRAP_UP interactions.
- An agent who rejected or missed an interaction is not offered the same one again for
  ``REOFFER_COOLDOWN_SECONDS``, so a re-offer goes to the next agent.
- A targeted transfer to an agent is a direct offer, outside the queue order.
"""
