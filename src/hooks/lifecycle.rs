pub struct Lifecycle; pub struct ActiveNode; pub struct ActiveRun; pub struct ActiveStage; pub struct RunInfo;
