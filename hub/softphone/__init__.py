"""The browser softphone: the hub is the browser's WebRTC peer.

- :mod:`hub.softphone.devices`: how each agent takes calls (browser, SIP phone, external).
- :mod:`hub.softphone.worker`: a worker process holding aiortc peer connections, bridged to
  the media engine by plain G.711 RTP over loopback.
- :mod:`hub.softphone.service`: the hub side: the worker pool, the browser legs (ordinary
  :class:`~channels.voice.call.Call` objects to the media engine), reconnection.
"""
