"""VoiceSettings from HUB_VOICE_* variables."""

from __future__ import annotations

from pathlib import Path

from channels.voice.settings import VoiceSettings


def test_settings_from_env() -> None:
    s = VoiceSettings.from_env(
        {
            "HUB_VOICE_BIND_PORT": "5080",
            "HUB_VOICE_RTP_PORT_MIN": "40000",
            "HUB_VOICE_RTP_PORT_MAX": "40100",
            "HUB_VOICE_TRUSTED_GATEWAYS": "10.0.0.1, 10.0.0.2",
            "HUB_VOICE_AGENT_CREDENTIALS": "1001:pw1,1002:pw:with:colons",
            "HUB_VOICE_TRUNK_HOST": "sip.provider.example",
            "HUB_VOICE_MOH_WAV": "/srv/moh.wav",
            "HUB_VOICE_TRANSPORTS": "udp,tcp",
            "HUB_VOICE_SYMMETRIC_RTP": "0",
            "HUB_VOICE_MEDIA_THREAD": "0",
        }
    )
    assert (s.bind_port, s.rtp_port_min, s.rtp_port_max) == (5080, 40000, 40100)
    assert s.trusted_gateways == ("10.0.0.1", "10.0.0.2")
    assert s.agent_credentials == {"1001": "pw1", "1002": "pw:with:colons"}
    assert s.trunk_host == "sip.provider.example" and s.moh_wav == Path("/srv/moh.wav")
    assert s.transports == ("udp", "tcp") and s.symmetric_rtp is False
    assert s.media_thread is False


def test_defaults_without_env() -> None:
    s = VoiceSettings.from_env({})
    assert s.bind_port == 5060 and s.moh_wav is None and s.symmetric_rtp and s.media_thread


def test_sdp_and_signalling_hosts_follow_the_advertised_address() -> None:
    s = VoiceSettings(bind_host="0.0.0.0", rtp_host="0.0.0.0", advertised_host="203.0.113.7")
    assert s.sdp_host == "203.0.113.7" and s.signalling_host == "203.0.113.7"
    local = VoiceSettings(bind_host="127.0.0.1", rtp_host="127.0.0.1")
    assert local.sdp_host == "127.0.0.1" and local.signalling_host == "127.0.0.1"


def test_tcp_limits_from_env() -> None:
    s = VoiceSettings.from_env(
        {"HUB_VOICE_TCP_IDLE_TIMEOUT": "30.5", "HUB_VOICE_TCP_MAX_PER_ADDRESS": "8"}
    )
    assert (s.tcp_idle_timeout, s.tcp_max_connections_per_address) == (30.5, 8)
    assert VoiceSettings.from_env({}).tcp_max_connections_per_address == 64
