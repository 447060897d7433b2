# throwaway stand-in
import asyncio
import os

from temporalio import workflow
from temporalio.client import Client
from temporalio.worker import Worker


@workflow.defn
class W:
    @workflow.run
    async def run(self) -> None:
        pass


async def main():
    print(
        "env",
        {k: v for k, v in os.environ.items() if k.startswith(("TEMPORAL_", "TENURE_"))},
        flush=True,
    )
    c = await Client.connect(
        os.environ["TEMPORAL_ADDRESS"], namespace=os.environ["TEMPORAL_NAMESPACE"]
    )
    if os.environ.get("FAKE_WORKER_CRASH"):
        raise SystemExit(3)
    await Worker(c, task_queue="tenure-identity", workflows=[W]).run()


if __name__ == "__main__":
    asyncio.run(main())
