"""Start Apache Kafka (KRaft) from its Maven Central jars: ``python kafka/broker.py --port 9092 --data var/kafka``.

``--nodes 3`` starts a three-node quorum; ``--port 0 -- <command>`` runs a command beside
a fresh node on free ports. The implementation is ``shared_events.kafka_server``, so
``make run``, the tests and the benchmark start Kafka the same way.
"""

import sys

from shared_events.kafka_server import main

if __name__ == "__main__":
    sys.exit(main())
