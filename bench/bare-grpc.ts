/**
 * The baseline for the gRPC benchmark: a bare @grpc/grpc-js server with proto-loader's stock
 * (protobufjs) codec, answering ModelInfer with the same demo-logistic computation and nothing
 * else. Prints its port on stdout.
 */
import * as grpc from '@grpc/grpc-js';
import { bareHandlers, bareService } from './bare-grpc-service.js';

const server = new grpc.Server();
server.addService(bareService, bareHandlers());
server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) process.exit(1);
  console.log(port);
});
