# throwaway stand-in
import argparse, os
import uvicorn
from fastapi import FastAPI, Request, HTTPException
from fastapi.responses import JSONResponse

p = argparse.ArgumentParser()
p.add_argument("--host")
p.add_argument("--port", type=int)
a = p.parse_args()
app = FastAPI()


@app.get("/healthz")
def h():
    return {"ok": True}


@app.post("/v1/hr/events")
async def e(r: Request):
    if r.headers.get("authorization") != f"Bearer {os.environ['TENURE_INTAKE_TOKEN']}":
        raise HTTPException(401)
    body = await r.json()
    print("EVENTS", len(body["events"]), flush=True)
    return JSONResponse([{"event_id": x["event_id"]} for x in body["events"]], status_code=202)


uvicorn.run(app, host=a.host, port=a.port, log_level="warning")
