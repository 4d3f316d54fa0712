// JGitSSH clones args[0] into args[1] over SSH with JGit and JSch (the
// RSA PEM key args[2]), commits a file and pushes main back. It prints
// "HEAD <id>" after the clone and "<ref> <status>" for the push.
import java.io.File;
import java.nio.file.Files;

import com.jcraft.jsch.JSch;
import com.jcraft.jsch.JSchException;
import com.jcraft.jsch.Session;
import org.eclipse.jgit.api.Git;
import org.eclipse.jgit.api.TransportConfigCallback;
import org.eclipse.jgit.transport.JschConfigSessionFactory;
import org.eclipse.jgit.transport.OpenSshConfig;
import org.eclipse.jgit.transport.PushResult;
import org.eclipse.jgit.transport.RemoteRefUpdate;
import org.eclipse.jgit.transport.SshSessionFactory;
import org.eclipse.jgit.transport.SshTransport;
import org.eclipse.jgit.util.FS;

public class JGitSSH {
    public static void main(String[] args) throws Exception {
        final String key = args[2];
        final SshSessionFactory factory = new JschConfigSessionFactory() {
            @Override
            protected void configure(OpenSshConfig.Host host, Session session) {
                session.setConfig("StrictHostKeyChecking", "no");
            }

            @Override
            protected JSch createDefaultJSch(FS fs) throws JSchException {
                JSch jsch = super.createDefaultJSch(fs);
                jsch.removeAllIdentity();
                jsch.addIdentity(key);
                return jsch;
            }
        };
        TransportConfigCallback cb = t -> {
            if (t instanceof SshTransport) {
                ((SshTransport) t).setSshSessionFactory(factory);
            }
        };
        File dir = new File(args[1]);
        Git git = Git.cloneRepository().setURI(args[0]).setDirectory(dir)
                .setTransportConfigCallback(cb).call();
        System.out.println("HEAD " + git.getRepository().resolve("HEAD").name());
        Files.write(new File(dir, "jgit.txt").toPath(), "from jgit\n".getBytes("UTF-8"));
        git.add().addFilepattern("jgit.txt").call();
        git.commit().setMessage("commit from jgit")
                .setAuthor("JGit", "jgit@weir.test").setCommitter("JGit", "jgit@weir.test").call();
        for (PushResult r : git.push().setTransportConfigCallback(cb).setRemote("origin").add("main").call()) {
            for (RemoteRefUpdate u : r.getRemoteUpdates()) {
                System.out.println(u.getRemoteName() + " " + u.getStatus());
            }
        }
        System.out.println("NEW " + git.getRepository().resolve("HEAD").name());
    }
}
