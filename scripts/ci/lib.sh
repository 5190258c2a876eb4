# Shared by postgres.sh and s3.sh (sourced, not run).

# A TCP port free on 127.0.0.1 right now (the OS picks it; a tiny race with other starters is
# accepted for throw-away test services).
free_port() {
  node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}
