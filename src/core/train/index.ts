/**
 * The training engine: reverse-mode autodiff over the IR into one ONNX training graph run
 * by ONNX Runtime, losses, optimizers and the training loop. Types and their contracts are
 * in `api.ts`.
 */
export * from './api';
export { buildTrainingGraph, floatWeights, TRAINING_OPSET } from './autodiff';
export { TrainingSession } from './session';
export { fit, accumulateGradients, assertTrainable, trainingRefusal, channelSaliency, selectTrainable, parameterised, withWeights } from './fit';
export { tensorSampleSet, datasetSampleSet, labelsTensor, withTeacher, withTeacherOutputs, shuffled } from './data';
export { Optimizer, clipGradNorm, learningRate } from './optim';
export { registerGradient, differentiableOps, type GradRule, type GradContext, type GradRuleEntry } from './grad/registry';
export { writeCheckpoint, readCheckpoint, assertCheckpointExists } from './checkpoint';
