// The browser softphone (hub/softphone): the hub is this page's WebRTC peer.
// The hub tells the page over /softphone/events to ring (an offered call: Accept answers)
// or to connect (the call is already this agent's: accepted, a consult, supervision);
// the page sends its SDP offer to /softphone/legs/<token>/offer and plays the answer's
// audio. A lost connection holds the caller while a new peer connection is negotiated.
(() => {
  "use strict";

  const MESSAGES = {
    insecure:
      "This page is not a secure origin, so the browser gives it no microphone. Open the " +
      "console over HTTPS (the hub's HUB_TLS_CERTFILE and HUB_TLS_KEYFILE) or at " +
      "http://localhost.",
    denied:
      "The microphone is blocked for this site. Allow it (the icon at the left of the " +
      "address bar → Microphone → Allow), then reload the page.",
    missing:
      "No microphone was found. Plug one in (or pick another under Microphone) and try again.",
    busy:
      "The microphone is in use by another program or could not start. Close that program " +
      "and try again.",
    lost: "Connection lost: the caller is on hold. Reconnecting…",
    gaveUp:
      "The connection could not be restored; the caller is still on hold. Check your " +
      "network, then press Reconnect (or switch to your SIP phone).",
  };

  const sp = {
    root: null,
    events: null,
    pc: null,
    stream: null,
    token: null,
    ringing: null,
    ringTimer: null,
    audioCtx: null,
    remoteStream: null,
    connected: false,
    reconnecting: false,
    meterTimer: null,
    lastError: "",
  };
  window.softphone = sp; // the end-to-end tests read its state

  const $ = (sel) => (sp.root ? sp.root.querySelector(sel) : null);

  function csrf() {
    try {
      return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["x-csrftoken"] || "";
    } catch (_e) {
      return "";
    }
  }

  function status(text) {
    const el = $(".sp-status");
    if (el) el.textContent = text;
  }

  function showError(text) {
    sp.lastError = text || "";
    const el = $(".sp-error");
    if (!el) return;
    el.textContent = text || "";
    el.hidden = !text;
  }

  function showCall(on) {
    const el = $(".sp-call");
    if (el) el.hidden = !on;
  }

  function ctx() {
    if (!sp.audioCtx) sp.audioCtx = new (window.AudioContext || window.webkitAudioContext)();
    if (sp.audioCtx.state === "suspended") sp.audioCtx.resume();
    return sp.audioCtx;
  }

  // --- the microphone -------------------------------------------------------------------

  function micProblem(err) {
    if (!window.isSecureContext || !navigator.mediaDevices) return MESSAGES.insecure;
    const name = err && err.name;
    if (name === "NotAllowedError" || name === "SecurityError") return MESSAGES.denied;
    if (name === "NotFoundError" || name === "OverconstrainedError") return MESSAGES.missing;
    if (name === "NotReadableError" || name === "AbortError") return MESSAGES.busy;
    return `The microphone could not start (${name || err}).`;
  }

  async function microphone() {
    if (sp.stream && sp.stream.getAudioTracks().some((t) => t.readyState === "live")) {
      return sp.stream;
    }
    if (!window.isSecureContext || !navigator.mediaDevices) {
      showError(MESSAGES.insecure);
      return null;
    }
    const mic = $(".sp-mic");
    const audio = mic && mic.value ? { deviceId: { exact: mic.value } } : true;
    try {
      sp.stream = await navigator.mediaDevices.getUserMedia({ audio });
    } catch (err) {
      showError(micProblem(err));
      return null;
    }
    showError("");
    listDevices();
    meter(sp.stream, ".sp-level-mic");
    return sp.stream;
  }

  async function listDevices() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.enumerateDevices) return;
    const devices = await navigator.mediaDevices.enumerateDevices();
    const fill = (sel, kind) => {
      const el = $(sel);
      if (!el) return;
      const keep = el.value;
      el.replaceChildren(new Option("default", ""));
      for (const d of devices.filter((x) => x.kind === kind)) {
        el.append(new Option(d.label || d.deviceId.slice(0, 8), d.deviceId));
      }
      el.value = keep;
    };
    fill(".sp-mic", "audioinput");
    fill(".sp-speaker", "audiooutput");
    const row = $(".sp-speaker-row");
    const audio = $(".sp-audio");
    if (row && audio && typeof audio.setSinkId !== "function") row.hidden = true;
  }

  // --- level meters ---------------------------------------------------------------------

  const meters = new Map();
  function meter(stream, selector) {
    try {
      const source = ctx().createMediaStreamSource(stream);
      const analyser = ctx().createAnalyser();
      analyser.fftSize = 512;
      source.connect(analyser);
      meters.set(selector, analyser);
    } catch (_e) {
      return;
    }
    if (!sp.meterTimer) {
      sp.meterTimer = setInterval(() => {
        for (const [sel, analyser] of meters) {
          const data = new Float32Array(analyser.fftSize);
          analyser.getFloatTimeDomainData(data);
          let sum = 0;
          for (const v of data) sum += v * v;
          const el = $(sel);
          if (el) el.value = Math.min(1, Math.sqrt(sum / data.length) * 4);
        }
      }, 100);
    }
  }

  // --- ringing (two tones, 2 s on and 4 s off) ------------------------------------------

  function startRing(token) {
    stopRing();
    sp.ringing = token;
    const el = $(".sp-ring");
    if (el) el.hidden = false;
    status("Incoming call…");
    const burst = () => {
      try {
        const ac = ctx();
        const gain = ac.createGain();
        gain.gain.value = 0.1;
        gain.connect(ac.destination);
        for (const f of [440, 480]) {
          const osc = ac.createOscillator();
          osc.frequency.value = f;
          osc.connect(gain);
          osc.start();
          osc.stop(ac.currentTime + 2);
        }
      } catch (_e) {
        // no audio output: the visible ring still shows
      }
    };
    burst();
    sp.ringTimer = setInterval(burst, 6000);
  }

  function stopRing(token) {
    if (token && sp.ringing !== token) return;
    sp.ringing = null;
    clearInterval(sp.ringTimer);
    sp.ringTimer = null;
    const el = $(".sp-ring");
    if (el) el.hidden = true;
  }

  // --- the peer connection --------------------------------------------------------------

  function iceServers() {
    try {
      return JSON.parse((sp.root && sp.root.dataset.iceServers) || "[]");
    } catch (_e) {
      return [];
    }
  }

  function gathered(pc, ms) {
    if (pc.iceGatheringState === "complete") return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        if (pc.iceGatheringState === "complete") resolve();
      };
      pc.addEventListener("icegatheringstatechange", done);
      setTimeout(resolve, ms);
    });
  }

  async function post(url, body) {
    const res = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json", "x-csrftoken": csrf() },
      body: body === undefined ? "" : JSON.stringify(body),
      credentials: "same-origin",
    });
    if (!res.ok) {
      let detail = "";
      try {
        detail = (await res.json()).detail || "";
      } catch (_e) {
        detail = "";
      }
      const err = new Error(detail || `HTTP ${res.status}`);
      err.status = res.status;
      throw err;
    }
    return res;
  }

  async function negotiate(token) {
    const stream = await microphone();
    if (!stream) return false;
    const pc = new RTCPeerConnection({ iceServers: iceServers() });
    if (sp.pc) {
      try {
        sp.pc.close();
      } catch (_e) {
        // already closed
      }
    }
    sp.pc = pc;
    for (const track of stream.getAudioTracks()) pc.addTrack(track, stream);
    const transceiver = pc.getTransceivers()[0];
    if (transceiver && transceiver.setCodecPreferences && window.RTCRtpReceiver) {
      // PCMU first: the call's G.711 reaches the browser with no transcoding
      const codecs = RTCRtpReceiver.getCapabilities("audio").codecs;
      const first = codecs.filter((c) => c.mimeType.toLowerCase() === "audio/pcmu");
      transceiver.setCodecPreferences([...first, ...codecs.filter((c) => !first.includes(c))]);
    }
    pc.ontrack = (e) => {
      const remote = e.streams && e.streams[0] ? e.streams[0] : new MediaStream([e.track]);
      sp.remoteStream = remote;
      const audio = $(".sp-audio");
      if (audio) {
        audio.srcObject = remote;
        const speaker = $(".sp-speaker");
        if (speaker && speaker.value && audio.setSinkId) audio.setSinkId(speaker.value);
        audio.play().catch(() => {});
      }
      meter(remote, ".sp-level-remote");
    };
    pc.onconnectionstatechange = () => {
      if (sp.pc !== pc) return;
      if (pc.connectionState === "connected") {
        sp.connected = true;
        sp.reconnecting = false;
        showError("");
        status("On a call in this browser.");
        const retry = $(".sp-retry");
        if (retry) retry.hidden = true;
      } else if (pc.connectionState === "failed" || pc.connectionState === "disconnected") {
        if (sp.token === token && sp.connected) reconnect(token);
      }
    };
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc, 3000);
    const res = await post(`/softphone/legs/${encodeURIComponent(token)}/offer`, {
      sdp: pc.localDescription.sdp,
    });
    const answer = await res.json();
    if (sp.pc !== pc) return false;
    await pc.setRemoteDescription({ type: "answer", sdp: answer.sdp });
    return true;
  }

  async function connect(token) {
    stopRing();
    sp.token = token;
    sp.connected = false;
    status("Connecting the call…");
    showCall(true);
    try {
      if (!(await negotiate(token))) status("The call could not connect.");
    } catch (err) {
      showError(`The call could not connect: ${err.message}`);
      status("Not connected.");
    }
  }

  async function reconnect(token) {
    if (sp.reconnecting) return;
    sp.reconnecting = true;
    sp.connected = false;
    status("reconnecting…");
    showError(MESSAGES.lost);
    try {
      await post(`/softphone/legs/${encodeURIComponent(token)}/lost`);
    } catch (_e) {
      // the hub may be unreachable right now: it notices the lost peer on its own
    }
    const limit = Date.now() + 1000 * Number((sp.root && sp.root.dataset.reconnectSeconds) || 20);
    while (sp.token === token && sp.reconnecting && Date.now() < limit) {
      try {
        await negotiate(token);
        const pc = sp.pc;
        const until = Date.now() + 8000;
        while (pc && pc.connectionState !== "connected" && Date.now() < until) {
          await new Promise((r) => setTimeout(r, 250));
        }
        if (pc && pc.connectionState === "connected") return;
      } catch (err) {
        if (err.status === 404 || err.status === 410) {
          ended(token, "The call ended while reconnecting.");
          return;
        }
      }
      await new Promise((r) => setTimeout(r, 2000));
    }
    if (sp.token === token && sp.reconnecting) gaveUp(token);
  }

  function gaveUp(token) {
    if (sp.token !== token) return;
    sp.reconnecting = false;
    status("Not connected: the caller is on hold.");
    showError(MESSAGES.gaveUp);
    const retry = $(".sp-retry");
    if (retry) retry.hidden = false;
  }

  function ended(token, text) {
    if (token && sp.token !== token) return;
    if (sp.pc) {
      try {
        sp.pc.close();
      } catch (_e) {
        // already closed
      }
    }
    sp.pc = null;
    sp.token = null;
    sp.connected = false;
    sp.reconnecting = false;
    sp.remoteStream = null;
    meters.delete(".sp-level-remote");
    showCall(false);
    status(text || "Call ended. Ready: calls ring in this page.");
  }

  // --- the hub's events -----------------------------------------------------------------

  function onEvent(msg) {
    let data;
    try {
      data = JSON.parse(msg.data);
    } catch (_e) {
      return;
    }
    switch (data.action) {
      case "ring":
        startRing(data.token);
        break;
      case "stop":
        stopRing(data.token);
        break;
      case "connect":
        connect(data.token);
        break;
      case "resume": // this page was opened (or reloaded) during the call
        if (!sp.token) {
          sp.token = data.token;
          showCall(true);
          reconnect(data.token);
        }
        break;
      case "lost":
        if (sp.token === data.token && !sp.reconnecting) reconnect(data.token);
        break;
      case "reconnected":
        if (sp.token === data.token) {
          sp.reconnecting = false;
          showError("");
          status("On a call in this browser.");
        }
        break;
      case "gave-up":
        gaveUp(data.token);
        break;
      case "ended":
        ended(data.token);
        break;
      default:
        break;
    }
  }

  function listen() {
    if (sp.events) return;
    sp.events = new EventSource("/softphone/events");
    sp.events.addEventListener("softphone", onEvent);
  }

  function stopListening() {
    if (sp.events) sp.events.close();
    sp.events = null;
  }

  // --- wiring ---------------------------------------------------------------------------

  function bind(root) {
    sp.root = root;
    if (root.dataset.device !== "browser") {
      stopListening();
      return;
    }
    if (!window.isSecureContext || !navigator.mediaDevices) showError(MESSAGES.insecure);
    listen();
    listDevices();
    const mute = $(".sp-mute");
    if (mute) {
      mute.addEventListener("click", () => {
        const on = mute.getAttribute("aria-pressed") !== "true";
        mute.setAttribute("aria-pressed", String(on));
        mute.textContent = on ? "Unmute" : "Mute";
        if (sp.stream) for (const t of sp.stream.getAudioTracks()) t.enabled = !on;
      });
    }
    const hangup = $(".sp-hangup");
    if (hangup) {
      hangup.addEventListener("click", async () => {
        if (!sp.token) return;
        try {
          await post(`/softphone/legs/${encodeURIComponent(sp.token)}/hangup`);
        } catch (err) {
          showError(`Hang-up failed: ${err.message}`);
        }
      });
    }
    const check = $(".sp-check");
    if (check) {
      check.addEventListener("click", async () => {
        if (await microphone()) status("The microphone works: calls ring in this page.");
      });
    }
    const retry = $(".sp-retry");
    if (retry) {
      retry.addEventListener("click", () => {
        if (sp.token) reconnect(sp.token);
      });
    }
    const mic = $(".sp-mic");
    if (mic) {
      mic.addEventListener("change", async () => {
        if (sp.stream) for (const t of sp.stream.getTracks()) t.stop();
        sp.stream = null;
        const stream = await microphone();
        if (stream && sp.pc) {
          const sender = sp.pc.getSenders().find((s) => s.track && s.track.kind === "audio");
          if (sender) sender.replaceTrack(stream.getAudioTracks()[0]);
        }
      });
    }
    const speaker = $(".sp-speaker");
    const audio = $(".sp-audio");
    if (speaker && audio && audio.setSinkId) {
      speaker.addEventListener("change", () => audio.setSinkId(speaker.value));
    }
  }

  // Accepting a voice offer with the browser as device: the microphone first, so a refused
  // or missing one is said before the call is taken (the accept is not sent then).
  document.addEventListener("htmx:confirm", (e) => {
    const button = e.target;
    if (!sp.root || sp.root.dataset.device !== "browser") return;
    const offer = button.closest && button.closest(".offer[data-channel='voice']");
    if (!offer || !/\/accept$/.test(button.getAttribute("hx-post") || "")) return;
    e.preventDefault();
    microphone().then((stream) => {
      if (stream) e.detail.issueRequest(true);
    });
  });

  function init() {
    const root = document.querySelector("[data-softphone]");
    if (root && root !== sp.root) bind(root);
  }

  document.addEventListener("DOMContentLoaded", init);
  document.addEventListener("htmx:load", init);
  if (document.readyState !== "loading") init();
})();
