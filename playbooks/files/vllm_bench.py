# Runs vLLM's own serving benchmark (vllm.benchmarks.serve, what `vllm bench
# serve` runs) with the arguments given. The `vllm` console script is not used:
# the CPU build's fails at start.
#
# --api-key-file PATH: the API key is read from that file and handed to the
# client through this process's OPENAI_API_KEY, which vLLM's client reads, so
# the key is never on a command line or in the environment of the task that
# starts this script.
import os
import sys

from vllm.benchmarks.serve import add_cli_args, main
from vllm.utils.argparse_utils import FlexibleArgumentParser

parser = FlexibleArgumentParser(description="vLLM serving benchmark")
parser.add_argument("--api-key-file", help="file holding the API key (sent as a bearer token)")
add_cli_args(parser)
args = parser.parse_args()
if args.api_key_file:
    with open(args.api_key_file, encoding="utf-8") as key_file:
        key = key_file.read().strip()
    if not key:
        sys.exit("%s is empty" % args.api_key_file)
    os.environ["OPENAI_API_KEY"] = key
main(args)
