"""One module per ``netshadow`` command (or command group): each defines its handlers and
``register(sub)``, which adds its parser to the ``netshadow`` subcommands and sets ``func``."""

from . import agent, config, controller, demo, lab, pcap, plan, profiler, replay, run, shadow, telemetry

# in the order ``netshadow --help`` lists them
COMMANDS = (config, controller, lab, agent, telemetry, profiler, shadow, plan, demo, pcap, run, replay)
