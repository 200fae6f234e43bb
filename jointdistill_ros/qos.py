"""QoS profiles from node parameters and readable incompatible-QoS log lines.

QoS mismatch is the most common complaint about camera nodes: a reliable subscriber and a
best-effort publisher never connect, silently. The callbacks made here log, once per new
mismatch, which policy differs and what to change.
"""
from __future__ import annotations

from typing import Callable

from rclpy.event_handler import (
    PublisherEventCallbacks,
    QoSOfferedIncompatibleQoSInfo,
    QoSRequestedIncompatibleQoSInfo,
    SubscriptionEventCallbacks,
)
from rclpy.qos import HistoryPolicy, QoSPolicyKind, QoSPresetProfiles, QoSProfile, ReliabilityPolicy

QOS_PROFILES: tuple[str, ...] = ('SENSOR_DATA', 'DEFAULT', 'SYSTEM_DEFAULT')
RELIABILITIES: dict[str, ReliabilityPolicy] = {
    'reliable': ReliabilityPolicy.RELIABLE,
    'best_effort': ReliabilityPolicy.BEST_EFFORT,
}


def qos_from_parameters(profile: str, depth: int, reliability: str | None = None) -> QoSProfile:
    """A KEEP_LAST profile from a preset name, a queue depth and an optional reliability.

    profile: 'SENSOR_DATA' (best effort, volatile), 'DEFAULT' (reliable, volatile) or
    'SYSTEM_DEFAULT' (the middleware's). depth >= 1 messages. reliability: None keeps the
    preset's, else 'reliable' or 'best_effort'. Raises ValueError naming the bad argument.
    """
    if profile not in QOS_PROFILES:
        raise ValueError(f"profile '{profile}' is unknown; choose one of "
                         f"{', '.join(QOS_PROFILES)}")
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise ValueError(f'depth must be an integer >= 1 (messages), got {depth!r}')
    if reliability is not None and reliability not in RELIABILITIES:
        raise ValueError(f"reliability '{reliability}' is unknown; choose "
                         f"{' or '.join(RELIABILITIES)} (or leave it unset)")
    preset = QoSPresetProfiles.get_from_short_key(profile.lower())
    qos = QoSProfile(
        history=HistoryPolicy.KEEP_LAST, depth=depth,
        reliability=RELIABILITIES[reliability] if reliability else preset.reliability,
        durability=preset.durability, lifespan=preset.lifespan, deadline=preset.deadline,
        liveliness=preset.liveliness, liveliness_lease_duration=preset.liveliness_lease_duration)
    return qos


def publisher_qos(depth: int = 2) -> QoSProfile:
    """Reliable, volatile, KEEP_LAST ``depth``: serves reliable (RViz) and best-effort readers."""
    return qos_from_parameters('DEFAULT', depth, 'reliable')


_ADVICE = {
    # (role, policy) -> (what this side has, what the other side has, what to change)
    ('subscriber', QoSPolicyKind.RELIABILITY): (
        'asks RELIABLE', 'the publisher offers BEST_EFFORT',
        'set {parameter}: SENSOR_DATA (best effort) or make the publisher reliable'),
    ('publisher', QoSPolicyKind.RELIABILITY): (
        'offers BEST_EFFORT', 'a subscriber asks RELIABLE',
        'make the subscriber best effort (SENSOR_DATA) or publish reliably'),
    ('subscriber', QoSPolicyKind.DURABILITY): (
        'asks TRANSIENT_LOCAL', 'the publisher offers VOLATILE',
        'make the subscription VOLATILE or the publisher TRANSIENT_LOCAL'),
    ('publisher', QoSPolicyKind.DURABILITY): (
        'offers VOLATILE', 'a subscriber asks TRANSIENT_LOCAL',
        'make the subscriber VOLATILE (RViz: Durability Policy = Volatile)'),
}


def describe_incompatibility(
        event: QoSRequestedIncompatibleQoSInfo | QoSOfferedIncompatibleQoSInfo, topic: str,
        role: str, parameter: str = 'qos_profile') -> str:
    """One log line: which QoS policy mismatched on ``topic`` and what to change.

    role is this endpoint's: 'subscriber' (event is QoSRequestedIncompatibleQoSInfo) or
    'publisher' (QoSOfferedIncompatibleQoSInfo). ``parameter`` is the node parameter that
    sets this endpoint's profile, named in the advice.
    """
    if role not in ('subscriber', 'publisher'):
        raise ValueError(f"role must be 'subscriber' or 'publisher', got '{role}'")
    policy = QoSPolicyKind(event.last_policy_kind)
    count = f'({event.total_count} incompatible so far)'
    advice = _ADVICE.get((role, policy))
    if advice is None:
        other = 'publisher' if role == 'subscriber' else 'subscriber'
        return (f'QoS incompatible: {role} on {topic} and a {other} disagree on {policy.name} '
                f'{count}: make the {policy.name} settings of both sides compatible')
    mine, theirs, change = advice
    return (f'QoS incompatible on {topic}: {role} {mine} but {theirs} ({policy.name} '
            f'mismatch) {count}: {change.format(parameter=parameter)}')


def subscription_event_callbacks(log: Callable[[str], object], topic: str,
                                 parameter: str = 'qos_profile') -> SubscriptionEventCallbacks:
    """Callbacks for create_subscription(event_callbacks=...) that log QoS mismatches.

    log: e.g. ``node.get_logger().warning``.
    """
    def on_incompatible(event: QoSRequestedIncompatibleQoSInfo) -> None:
        log(describe_incompatibility(event, topic, 'subscriber', parameter))
    return SubscriptionEventCallbacks(incompatible_qos=on_incompatible)


def publisher_event_callbacks(log: Callable[[str], object], topic: str) -> PublisherEventCallbacks:
    """Callbacks for create_publisher(event_callbacks=...) that log QoS mismatches."""
    def on_incompatible(event: QoSOfferedIncompatibleQoSInfo) -> None:
        log(describe_incompatibility(event, topic, 'publisher'))
    return PublisherEventCallbacks(incompatible_qos=on_incompatible)
