"""Turns the core's :mod:`controller.core` messages into os-ken OpenFlow 1.3 messages."""

from __future__ import annotations

from .core import AddFlow, Barrier, ClearFlows, Message


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
    if isinstance(msg, AddFlow):
        r = msg.rule
        actions = [parser.OFPActionOutput(p) for kind, p in r.actions if kind == "output"]
        inst = []
        if actions:
            inst.append(parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, actions))
        for kind, table in r.actions:
            if kind == "goto":
                inst.append(parser.OFPInstructionGotoTable(table))
        return parser.OFPFlowMod(datapath, cookie=r.cookie, table_id=r.table,
                                 command=ofp.OFPFC_ADD, priority=r.priority,
                                 match=parser.OFPMatch(**dict(r.match)), instructions=inst)
    raise TypeError(f"message: unknown core message {msg!r}")
