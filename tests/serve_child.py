"""Child process for kill tests: serve EchoPolicy on 127.0.0.1:<argv[1]>, print the port, run until killed."""

import sys
import time

from rt2.serve.server import ServerConfig, ServerThread
from serve_fakes import EchoPolicy

if __name__ == "__main__":
    st = ServerThread(EchoPolicy(n_frames=1), ServerConfig(port=int(sys.argv[1]))).start()
    print(st.server.port, flush=True)
    while True:
        time.sleep(1)
