# Runs vLLM's own serving benchmark (vllm.benchmarks.serve, what `vllm bench
# serve` runs) with the arguments given. The `vllm` console script is not used:
# the CPU build's fails at start. The API key comes from OPENAI_API_KEY.
from vllm.benchmarks.serve import add_cli_args, main
from vllm.utils.argparse_utils import FlexibleArgumentParser

parser = FlexibleArgumentParser(description="vLLM serving benchmark")
add_cli_args(parser)
main(parser.parse_args())
