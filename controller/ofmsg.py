"""Turns the core's :mod:`controller.core` messages into os-ken OpenFlow 1.3 messages."""

from __future__ import annotations

from .core import (
    AddFlow,
    AddMeter,
    Barrier,
    ClearFlows,
    ClearMeters,
    DeleteFlow,
    DeleteMeter,
    Message,
    ModifyFlow,
    ModifyMeter,
    ProbeMeters,
    ReadMeters,
)


def to_openflow(datapath, msg: Message):
    """The os-ken message for one core message, bound to ``datapath``."""
    ofp = datapath.ofproto
    parser = datapath.ofproto_parser
    if isinstance(msg, ClearFlows):
        return parser.OFPFlowMod(datapath, table_id=ofp.OFPTT_ALL, command=ofp.OFPFC_DELETE,
                                 out_port=ofp.OFPP_ANY, out_group=ofp.OFPG_ANY,
                                 match=parser.OFPMatch())
    if isinstance(msg, Barrier):
        return parser.OFPBarrierRequest(datapath)
    if isinstance(msg, ProbeMeters):
        return parser.OFPMeterFeaturesStatsRequest(datapath, 0)
    if isinstance(msg, ReadMeters):
        return parser.OFPMeterConfigStatsRequest(datapath, 0, ofp.OFPM_ALL)
    if isinstance(msg, ClearMeters):
        return parser.OFPMeterMod(datapath, command=ofp.OFPMC_DELETE, flags=0, meter_id=ofp.OFPM_ALL)
    if isinstance(msg, DeleteMeter):
        return parser.OFPMeterMod(datapath, command=ofp.OFPMC_DELETE, flags=0, meter_id=msg.meter_id)
    if isinstance(msg, DeleteFlow):
        r = msg.rule
        return parser.OFPFlowMod(datapath, table_id=r.table, command=ofp.OFPFC_DELETE_STRICT,
                                 priority=r.priority, out_port=ofp.OFPP_ANY, out_group=ofp.OFPG_ANY,
                                 match=parser.OFPMatch(**dict(r.match)))
    if isinstance(msg, (AddMeter, ModifyMeter)):
        m = msg.meter
        return parser.OFPMeterMod(datapath, command=ofp.OFPMC_ADD if isinstance(msg, AddMeter)
                                  else ofp.OFPMC_MODIFY,
                                  flags=ofp.OFPMF_KBPS | ofp.OFPMF_BURST | ofp.OFPMF_STATS,
                                  meter_id=m.meter_id,
                                  bands=[parser.OFPMeterBandDrop(rate=m.rate_kbps, burst_size=m.burst_kbit)])
    if isinstance(msg, (AddFlow, ModifyFlow)):
        r = msg.rule
        actions = []
        for kind, v in r.actions:
            if kind == "set_dscp":
                actions.append(parser.OFPActionSetField(ip_dscp=v))
            elif kind == "output":
                actions.append(parser.OFPActionOutput(v))
        inst = []
        if r.meter is not None:
            inst.append(parser.OFPInstructionMeter(r.meter, ofp.OFPIT_METER))
        if actions:
            inst.append(parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, actions))
        for kind, table in r.actions:
            if kind == "goto":
                inst.append(parser.OFPInstructionGotoTable(table))
        command = ofp.OFPFC_ADD if isinstance(msg, AddFlow) else ofp.OFPFC_MODIFY_STRICT
        return parser.OFPFlowMod(datapath, cookie=r.cookie, table_id=r.table,
                                 command=command, priority=r.priority,
                                 match=parser.OFPMatch(**dict(r.match)), instructions=inst)
    raise TypeError(f"message: unknown core message {msg!r}")


# ------------------------------------------------------------------ statistics
def stats_request(datapath, kind: str):
    """The multipart request for one poll: ``flow`` (netshadow cookies only), ``port``, ``meter``."""
    from .cookies import MAGIC, MAGIC_MASK

    ofp = datapath.ofproto
    parser = datapath.ofproto_parser
    if kind == "flow":
        return parser.OFPFlowStatsRequest(datapath, 0, ofp.OFPTT_ALL, ofp.OFPP_ANY, ofp.OFPG_ANY,
                                          MAGIC << 56, MAGIC_MASK, parser.OFPMatch())
    if kind == "port":
        return parser.OFPPortStatsRequest(datapath, 0, ofp.OFPP_ANY)
    if kind == "meter":
        return parser.OFPMeterStatsRequest(datapath, 0, ofp.OFPM_ALL)
    raise ValueError(f"kind: unknown statistics kind {kind!r}")


def _duration(s) -> float:
    return s.duration_sec + s.duration_nsec / 1e9


def _hashable(v):
    return tuple(v) if isinstance(v, list) else v


def flow_stats(body) -> list:
    from .telemetry.poller import FlowStat

    return [FlowStat(s.table_id, s.priority, tuple((k, _hashable(v)) for k, v in s.match.items()),
                     s.cookie, s.byte_count, s.packet_count, _duration(s)) for s in body]


def port_stats(body) -> list:
    from .telemetry.poller import PortStat

    return [PortStat(s.port_no, s.rx_bytes, s.tx_bytes, s.rx_packets, s.tx_packets, _duration(s))
            for s in body]


def meter_stats(body) -> list:
    from .telemetry.poller import MeterStat

    return [MeterStat(s.meter_id, s.byte_in_count, s.packet_in_count,
                      sum(b.byte_band_count for b in s.band_stats),
                      sum(b.packet_band_count for b in s.band_stats), _duration(s)) for s in body]
